import Foundation

/// A dense, row-major matrix of `Float`.
///
/// Rows are node embeddings throughout Halo, so row-major keeps one node's features contiguous: gathering rows for
/// a message, scattering halo rows and SpMM's inner loop all read whole rows.
public struct Matrix: Sendable, Equatable {
    public private(set) var rows: Int
    public private(set) var cols: Int
    /// The `rows × cols` elements, row after row.
    public var storage: [Float]

    /// A matrix of zeros.
    public init(rows: Int, cols: Int) {
        precondition(rows >= 0 && cols >= 0, "matrix shape must be non-negative, got \(rows)×\(cols)")
        self.rows = rows
        self.cols = cols
        self.storage = [Float](repeating: 0, count: rows * cols)
    }

    /// A matrix whose elements are unspecified until written, for outputs that a kernel overwrites entirely (GEMM
    /// with β = 0, SpMM without accumulation): zero-filling them first would be one more pass over memory per
    /// layer. `reservingRows` leaves capacity for `appendZeroRows` up to that many rows without reallocating.
    public static func uninitialized(rows: Int, cols: Int, reservingRows: Int = 0) -> Matrix {
        precondition(rows >= 0 && cols >= 0, "matrix shape must be non-negative, got \(rows)×\(cols)")
        let count = rows * cols
        let storage = [Float](unsafeUninitializedCapacity: Swift.max(count, reservingRows * cols)) { _, initialized in
            initialized = count
        }
        return Matrix(rows: rows, cols: cols, storage: storage)
    }

    /// A matrix filled with `value`.
    public init(rows: Int, cols: Int, repeating value: Float) {
        precondition(rows >= 0 && cols >= 0, "matrix shape must be non-negative, got \(rows)×\(cols)")
        self.rows = rows
        self.cols = cols
        self.storage = [Float](repeating: value, count: rows * cols)
    }

    /// Wraps existing row-major storage.
    public init(rows: Int, cols: Int, storage: [Float]) {
        precondition(storage.count == rows * cols, "storage holds \(storage.count) floats, \(rows)×\(cols) needs \(rows * cols)")
        self.rows = rows
        self.cols = cols
        self.storage = storage
    }

    /// Builds a matrix from nested rows (convenient in tests).
    public init(_ nested: [[Float]]) {
        let cols = nested.first?.count ?? 0
        precondition(nested.allSatisfy { $0.count == cols }, "rows have different lengths")
        self.init(rows: nested.count, cols: cols, storage: nested.flatMap { $0 })
    }

    /// Builds a matrix element by element.
    public init(rows: Int, cols: Int, _ element: (Int, Int) -> Float) {
        var storage = [Float]()
        storage.reserveCapacity(rows * cols)
        for i in 0..<rows {
            for j in 0..<cols { storage.append(element(i, j)) }
        }
        self.init(rows: rows, cols: cols, storage: storage)
    }

    public var count: Int { rows * cols }
    public var isEmpty: Bool { count == 0 }

    @inlinable
    public subscript(row: Int, col: Int) -> Float {
        get { storage[row * cols + col] }
        set { storage[row * cols + col] = newValue }
    }

    /// A copy of one row.
    public func row(_ i: Int) -> [Float] {
        Array(storage[(i * cols)..<((i + 1) * cols)])
    }

    /// Changes the shape, keeping the row-major element order. Used when a buffer is reused for a new batch.
    public mutating func reshape(rows: Int, cols: Int) {
        precondition(rows * cols == count, "cannot reshape \(self.rows)×\(self.cols) to \(rows)×\(cols)")
        self.rows = rows
        self.cols = cols
    }

    /// Resizes to `rows × cols`, zero-filled. Reuses the allocation when it is large enough.
    public mutating func resize(rows: Int, cols: Int) {
        self.rows = rows
        self.cols = cols
        let n = rows * cols
        if storage.count == n {
            storage.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        } else {
            storage = [Float](repeating: 0, count: n)
        }
    }

    /// Appends `count` zero rows (room for halo rows after a partition's inner rows).
    public mutating func appendZeroRows(_ count: Int) {
        guard count > 0 else { return }  // appending nothing must not copy a shared buffer
        storage.append(contentsOf: repeatElement(0, count: count * cols))
        rows += count
    }

    /// Sets every element to zero without reallocating.
    public mutating func zero() {
        storage.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
    }

    /// The rows `range`, copied into a new matrix.
    public func rows(_ range: Range<Int>) -> Matrix {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "row range \(range) outside 0..<\(rows)")
        return Matrix(rows: range.count, cols: cols, storage: Array(storage[(range.lowerBound * cols)..<(range.upperBound * cols)]))
    }

    /// Copies the rows `range` into `buffer`, reshaped to them; its storage is reused when it holds as many
    /// elements (a loop over equal blocks of rows then allocates once, and once more for a shorter last block).
    public func copyRows(_ range: Range<Int>, into buffer: inout Matrix) {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "row range \(range) outside 0..<\(rows)")
        let count = range.count * cols
        if buffer.storage.count != count { buffer = Matrix.uninitialized(rows: range.count, cols: cols) }
        buffer.rows = range.count
        buffer.cols = cols
        guard count > 0 else { return }
        storage.withUnsafeBufferPointer { source in
            buffer.storage.withUnsafeMutableBufferPointer { target in
                target.baseAddress!.update(from: source.baseAddress! + range.lowerBound * cols, count: count)
            }
        }
    }

    /// The transpose (used by tests and small reference paths, not in hot loops).
    public func transposed() -> Matrix {
        var t = Matrix(rows: cols, cols: rows)
        for i in 0..<rows {
            for j in 0..<cols { t.storage[j * rows + i] = storage[i * cols + j] }
        }
        return t
    }

    /// Stacks matrices with equal column counts on top of each other.
    public static func vstack(_ parts: [Matrix]) -> Matrix {
        guard let first = parts.first else { return Matrix(rows: 0, cols: 0) }
        precondition(parts.allSatisfy { $0.cols == first.cols }, "vstack needs equal column counts")
        var storage = [Float]()
        storage.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for p in parts { storage.append(contentsOf: p.storage) }
        return Matrix(rows: parts.reduce(0) { $0 + $1.rows }, cols: first.cols, storage: storage)
    }

    /// Largest absolute element-wise difference; `.infinity` if the shapes differ.
    public func maxAbsDifference(_ other: Matrix) -> Float {
        guard rows == other.rows, cols == other.cols else { return .infinity }
        var m: Float = 0
        for i in 0..<storage.count { m = Swift.max(m, abs(storage[i] - other.storage[i])) }
        return m
    }
}

extension Matrix: CustomStringConvertible {
    public var description: String {
        let shown = (0..<Swift.min(rows, 6)).map { i in
            "[" + (0..<Swift.min(cols, 8)).map { String(format: "%.4g", Double(self[i, $0])) }.joined(separator: ", ")
                + (cols > 8 ? ", …" : "") + "]"
        }
        return "Matrix(\(rows)×\(cols)) [" + shown.joined(separator: ", ") + (rows > 6 ? ", …" : "") + "]"
    }
}
