import Foundation
import HaloGraph
import HaloNN

/// One rank's saved state after an epoch: everything a resumed run needs to go on computing exactly what the
/// uninterrupted run computes (parameters, Adam's moments and step count, the exchange's state) and to report the
/// whole run (the epochs so far).
///
/// File layout (little-endian): the magic `HALOCKPT`, a format version, the length-prefixed JSON `Header`, the
/// length-prefixed state bytes, and the XXH64 of everything before it. Version 2 added the compressed gradient
/// reduction's residuals at the end of the state; version 1 files (which no compressed run wrote) are read with
/// none. The checksum is checked before anything
/// is decoded, so a torn or flipped file is refused as corrupt, never half-restored.
struct RankCheckpoint {
    static let magic = Array("HALOCKPT".utf8)
    static let formatVersion = 2
    static let readableVersions = 1...2

    struct Header: Codable, Equatable {
        var epochsDone: Int
        var rank: Int
        var worldSize: Int
        /// XXH64 (hex) of the rank's shard: node ids, labels, split and features. Other data, or another
        /// partitioning, gives another digest.
        var shardDigest: String
        var configuration: TrainingConfiguration
    }

    struct SavedParameter: Equatable {
        var name: String
        var rows: Int
        var cols: Int
        var values: [Float]
    }

    var header: Header
    var parameters: [SavedParameter]
    var optimizer: Adam.State
    var records: [EpochRecord]
    /// Training time of the epochs in `records`, so a resumed run's total includes them.
    var trainingSeconds: Double
    var exchangeState: [UInt8]
    /// `CompressedGradientReduction.saveState`'s bytes (empty without compression).
    var gradientResiduals: [UInt8] = []

    /// The file's bytes in `version`'s layout (the current one; tests write version 1 to check it is still read).
    func encoded(version: Int = Self.formatVersion) throws -> Data {
        precondition(Self.readableVersions.contains(version), "no layout for checkpoint state version \(version)")
        var writer = ByteWriter()
        writer.append(elements: Self.magic)
        writer.append(version)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        encoder.keyEncodingStrategy = .convertToSnakeCase
        writer.append(elements: Array(try encoder.encode(header)))
        writer.append(parameters.count)
        for p in parameters {
            writer.append(p.name)
            writer.append(p.rows)
            writer.append(p.cols)
            writer.append(elements: p.values)
        }
        writer.append(optimizer.stepCount)
        for moments in [optimizer.firstMoments, optimizer.secondMoments] {
            for m in moments { writer.append(elements: m) }
        }
        // The records' own keys (EpochRecord names them), with no key strategy to undo on the way back.
        writer.append(elements: Array(try JSONEncoder().encode(records)))
        writer.append(trainingSeconds)
        writer.append(elements: exchangeState)
        if version >= 2 { writer.append(elements: gradientResiduals) }
        var bytes = writer.bytes
        let checksum = XXHash64.hash(bytes)
        withUnsafeBytes(of: checksum.littleEndian) { bytes.append(contentsOf: $0) }
        return Data(bytes)
    }

    /// Decodes `data`, read from `file`; every failure names the file and what is wrong.
    static func decode(_ data: Data, file: String) throws -> RankCheckpoint {
        let bytes = [UInt8](data)
        guard bytes.count >= 8 else {
            throw CheckpointError(path: file, reason: "holds \(bytes.count) bytes, too few for a checkpoint state (truncated?)")
        }
        let body = Array(bytes[..<(bytes.count - 8)])
        let stored = bytes[(bytes.count - 8)...].withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        var reader = ByteReader(body)
        var version = 0
        do {
            guard try reader.readElements(of: UInt8.self) == magic else {
                throw CheckpointError(path: file, reason: "is not a Halo checkpoint state (no HALOCKPT magic)")
            }
            version = try reader.read()
            guard readableVersions.contains(version) else {
                throw CheckpointError(path: file, reason: "has state format version \(version); this halo reads versions \(readableVersions.lowerBound)–\(readableVersions.upperBound)")
            }
        } catch let error as CheckpointError {
            throw error
        } catch {
            throw CheckpointError(path: file, reason: "is not a Halo checkpoint state (\(error))")
        }
        let computed = XXHash64.hash(body)
        guard computed == stored else {
            throw CheckpointError(path: file, reason: "is corrupt: its XXH64 is \(XXHash64.hex(computed)), the file records \(XXHash64.hex(stored))")
        }
        do {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            let header = try decoder.decode(Header.self, from: Data(try reader.readElements(of: UInt8.self)))
            let count: Int = try reader.read()
            guard count >= 0, count <= reader.remaining else { throw CheckpointStateError("\(count) parameters") }
            let parameters = try (0..<count).map { _ in
                SavedParameter(name: try reader.read(), rows: try reader.read(), cols: try reader.read(),
                               values: try reader.readElements())
            }
            let stepCount: Int = try reader.read()
            let first = try parameters.map { _ in try reader.readElements(of: Float.self) }
            let second = try parameters.map { _ in try reader.readElements(of: Float.self) }
            let records = try JSONDecoder().decode([EpochRecord].self, from: Data(try reader.readElements(of: UInt8.self)))
            let seconds: Double = try reader.read()
            guard seconds.isFinite && seconds >= 0 else { throw CheckpointStateError("training time of \(seconds) s") }
            let exchange: [UInt8] = try reader.readElements()
            let residuals: [UInt8] = version >= 2 ? try reader.readElements() : []
            guard reader.remaining == 0 else { throw CheckpointStateError("\(reader.remaining) bytes after the state") }
            return RankCheckpoint(
                header: header, parameters: parameters,
                optimizer: Adam.State(stepCount: stepCount, firstMoments: first, secondMoments: second),
                records: records, trainingSeconds: seconds, exchangeState: exchange, gradientResiduals: residuals)
        } catch {
            // The checksum matched, so the bytes are as written: a writer of another version or a bug.
            throw CheckpointError(path: file, reason: "cannot be decoded although its checksum matches: \(error)")
        }
    }
}

extension RankShard {
    /// XXH64 of what this rank trains on: node ids, labels, split masks and input features (see
    /// `RankCheckpoint.Header.shardDigest`).
    var digest: UInt64 {
        var hash = XXHash64.hash(nodeIDs, seed: UInt64(features.width))
        switch labels {
        case .singleLabel(let classes, let count): hash = XXHash64.hash(classes, seed: hash &+ UInt64(count))
        case .multiLabel(let targets, let count): hash = XXHash64.hash(targets, seed: hash &+ UInt64(count))
        }
        for mask in [split.train, split.validation, split.test] { hash = XXHash64.hash(mask, seed: hash) }
        switch features {
        case .dense(let m): hash = XXHash64.hash(m.storage, seed: hash)
        case .sparse(let s):
            hash = XXHash64.hash(s.matrix.rowPointers, seed: hash)
            hash = XXHash64.hash(s.matrix.columnIndices, seed: hash)
            hash = XXHash64.hash(s.matrix.values, seed: hash)
        }
        return hash
    }
}
