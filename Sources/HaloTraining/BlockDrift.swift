import HaloQuantization
import HaloTensor

/// PipeQS's drift `(1 − cos(a, b)) / 2` between `previous` and the rows `rows` of `source`, over the whole block:
/// 0 for the same direction (or two zero blocks), 1 for opposite ones, 0.5 when exactly one is zero; NaN for a
/// block without rows (nothing to compare).
func drift(_ source: Matrix, rows: RowSelection, previous: [Float]) -> Float {
    let width = source.cols
    guard rows.count > 0, width > 0 else { return .nan }
    precondition(previous.count == rows.count * width, "previous block has \(previous.count) values")
    var dot = 0.0, a2 = 0.0, b2 = 0.0
    source.storage.withUnsafeBufferPointer { s in
        previous.withUnsafeBufferPointer { p in
            for i in 0..<rows.count {
                let row = s.baseAddress! + rows[i] * width, old = p.baseAddress! + i * width
                var d: Float = 0, x: Float = 0, y: Float = 0
                for j in 0..<width {
                    d += row[j] * old[j]
                    x += row[j] * row[j]
                    y += old[j] * old[j]
                }
                dot += Double(d)
                a2 += Double(x)
                b2 += Double(y)
            }
        }
    }
    if a2 == 0 && b2 == 0 { return 0 }
    guard a2 > 0, b2 > 0 else { return 0.5 }
    let cosine = max(-1, min(1, dot / (a2.squareRoot() * b2.squareRoot())))
    return Float((1 - cosine) / 2)
}

/// The rows `rows` of `source`, back to back.
func gather(_ source: Matrix, rows: RowSelection, into block: inout [Float]) {
    let width = source.cols
    if block.count != rows.count * width { block = [Float](repeating: 0, count: rows.count * width) }
    source.storage.withUnsafeBufferPointer { s in
        block.withUnsafeMutableBufferPointer { b in
            for i in 0..<rows.count {
                (b.baseAddress! + i * width).update(from: s.baseAddress! + rows[i] * width, count: width)
            }
        }
    }
}
