import HaloNN
import HaloTensor
import HaloTransport

/// Full-precision halo exchange through a `Transport`: the vanilla distributed baseline, and (with `overlap`) the
/// central/marginal overlap of AdaQP-p.
///
/// Forward, each rank sends the rows of `sendLists[p]` to rank `p` and places what it receives in its halo block.
/// Backward, each rank sends the gradient of its halo block's rows back to their owners, who add them to their own
/// rows' gradients. Without overlap the local work runs after the messages arrived; with overlap it runs while they
/// are in flight.
public final class SynchronousExchange: InstrumentedExchange {
    public let plan: HaloExchangePlan
    public let overlap: Bool
    private let transport: any Transport
    public var statistics = CommunicationStatistics()

    public init(plan: HaloExchangePlan, transport: any Transport, overlap: Bool = false) {
        precondition(plan.rank == transport.rank && plan.worldSize == transport.worldSize, "plan is for another rank")
        self.plan = plan
        self.transport = transport
        self.overlap = overlap
    }

    public func exchangeForward(
        _ layer: LayerIndex, rows: inout Matrix, context: StepContext, overlapping: (Matrix) -> Void
    ) throws {
        precondition(rows.rows == plan.innerCount + plan.haloCount, "\(layer): exchange buffer has \(rows.rows) rows")
        let width = rows.cols
        let messages = (0..<plan.worldSize).map { p in
            p == plan.rank ? [] : RowCodec.encode(rows, rows: plan.sendLists[p])
        }
        statistics.haloBytesSent += messages.reduce(0) { $0 + $1.count }
        let pending = try transport.startAllToAll(messages)
        if overlap { overlapping(rows) }
        let received = try timedWait(pending)
        for p in 0..<plan.worldSize where p != plan.rank {
            let range = plan.haloRanges[p]
            try RowCodec.decode(received[p], into: &rows, firstRow: plan.innerCount + range.lowerBound,
                                rowCount: range.count, width: width, from: p)
        }
        if !overlap { overlapping(rows) }
    }

    public func exchangeBackward(
        _ layer: LayerIndex, haloGradient: Matrix, innerGradient: inout Matrix, context: StepContext,
        overlapping: (inout Matrix) -> Void
    ) throws {
        let width = haloGradient.cols
        let messages = (0..<plan.worldSize).map { p in
            p == plan.rank ? [] : RowCodec.encode(haloGradient, rowRange: plan.haloRanges[p])
        }
        statistics.haloBytesSent += messages.reduce(0) { $0 + $1.count }
        let pending = try transport.startAllToAll(messages)
        if overlap { overlapping(&innerGradient) }
        let received = try timedWait(pending)
        if !overlap { overlapping(&innerGradient) }
        for p in 0..<plan.worldSize where p != plan.rank {
            let rowsFromPeer = try RowCodec.matrix(received[p], rowCount: plan.sendLists[p].count, width: width, from: p)
            scatterAddRows(rowsFromPeer, count: rowsFromPeer.rows, into: &innerGradient, plan.sendLists[p])
        }
    }

    private func timedWait(_ pending: any PendingAllToAll) throws -> [[UInt8]] {
        let watch = Stopwatch()
        defer { statistics.waitSeconds += watch.elapsed }
        return try pending.wait()
    }
}

/// Full-precision row messages: rows of Float32, little-endian, back to back.
enum RowCodec {
    static func encode(_ m: Matrix, rows: [Int32]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: rows.count * m.cols * 4)
        guard !bytes.isEmpty else { return bytes }
        let cols = m.cols
        m.storage.withUnsafeBufferPointer { src in
            bytes.withUnsafeMutableBytes { dst in
                let out = dst.baseAddress!.assumingMemoryBound(to: Float.self)
                for (k, r) in rows.enumerated() {
                    (out + k * cols).update(from: src.baseAddress! + Int(r) * cols, count: cols)
                }
            }
        }
        return bytes
    }

    static func encode(_ m: Matrix, rowRange: Range<Int>) -> [UInt8] {
        m.storage.withUnsafeBytes { src in
            Array(src[(rowRange.lowerBound * m.cols * 4)..<(rowRange.upperBound * m.cols * 4)])
        }
    }

    static func decode(_ bytes: [UInt8], into m: inout Matrix, firstRow: Int, rowCount: Int, width: Int, from peer: Int) throws {
        guard bytes.count == rowCount * width * 4 else {
            throw TransportError.invalidArgument("rank \(peer) sent \(bytes.count) bytes, expected \(rowCount) rows × \(width) floats")
        }
        guard !bytes.isEmpty else { return }
        m.storage.withUnsafeMutableBytes { dst in
            bytes.withUnsafeBytes { src in
                dst.baseAddress!.advanced(by: firstRow * width * 4).copyMemory(from: src.baseAddress!, byteCount: bytes.count)
            }
        }
    }

    static func matrix(_ bytes: [UInt8], rowCount: Int, width: Int, from peer: Int) throws -> Matrix {
        var m = Matrix(rows: rowCount, cols: width)
        try decode(bytes, into: &m, firstRow: 0, rowCount: rowCount, width: width, from: peer)
        return m
    }
}
