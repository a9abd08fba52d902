/// A sparse matrix in compressed sparse row (CSR) form.
///
/// Used for graph operators (normalised adjacency, restricted to a partition's rows) and for sparse input features.
/// Row `r` holds entries `rowPointers[r] ..< rowPointers[r+1]` of `columnIndices` / `values`.
public struct SparseMatrix: Sendable, Equatable {
    public let rows: Int
    public let cols: Int
    public var rowPointers: [Int]
    public var columnIndices: [Int32]
    public var values: [Float]

    public var nonZeroCount: Int { columnIndices.count }

    /// Wraps CSR arrays; checks their shape and index ranges (a bad operator would read out of bounds later).
    public init(rows: Int, cols: Int, rowPointers: [Int], columnIndices: [Int32], values: [Float]) {
        precondition(rowPointers.count == rows + 1, "CSR needs rows+1 = \(rows + 1) row pointers, got \(rowPointers.count)")
        precondition(rowPointers.first == 0 && rowPointers.last == columnIndices.count, "CSR row pointers must run from 0 to nnz")
        precondition(values.count == columnIndices.count, "CSR has \(columnIndices.count) indices but \(values.count) values")
        precondition(cols <= Int(Int32.max), "CSR column count \(cols) does not fit Int32 indices")
        self.rows = rows
        self.cols = cols
        self.rowPointers = rowPointers
        self.columnIndices = columnIndices
        self.values = values
    }

    /// Builds from coordinate triplets; entries of a row keep their given order unless `sortRows`.
    public init(rows: Int, cols: Int, triplets: [(row: Int, col: Int, value: Float)], sortRows: Bool = true) {
        var counts = [Int](repeating: 0, count: rows + 1)
        for t in triplets {
            precondition(t.row >= 0 && t.row < rows && t.col >= 0 && t.col < cols, "triplet (\(t.row), \(t.col)) outside \(rows)×\(cols)")
            counts[t.row + 1] += 1
        }
        for r in 0..<rows { counts[r + 1] += counts[r] }
        var next = counts
        var cols32 = [Int32](repeating: 0, count: triplets.count)
        var vals = [Float](repeating: 0, count: triplets.count)
        for t in triplets {
            cols32[next[t.row]] = Int32(t.col)
            vals[next[t.row]] = t.value
            next[t.row] += 1
        }
        if sortRows {
            for r in 0..<rows where counts[r + 1] - counts[r] > 1 {
                let range = counts[r]..<counts[r + 1]
                let sorted = range.map { (cols32[$0], vals[$0]) }.sorted { $0.0 < $1.0 }
                for (k, e) in zip(range, sorted) { cols32[k] = e.0; vals[k] = e.1 }
            }
        }
        self.init(rows: rows, cols: cols, rowPointers: counts, columnIndices: cols32, values: vals)
    }

    /// Checks that every column index is in range and rows are sorted; returns a description of the first problem.
    public func firstStructuralProblem() -> String? {
        for r in 0..<rows {
            let lo = rowPointers[r], hi = rowPointers[r + 1]
            if hi < lo { return "row pointer decreases at row \(r): \(lo) then \(hi)" }
            if hi > columnIndices.count { return "row \(r) ends at entry \(hi), past the \(columnIndices.count) stored entries" }
            var previous: Int32 = -1
            for e in lo..<hi {
                let c = columnIndices[e]
                if c < 0 || Int(c) >= cols { return "row \(r) has column \(c), expected 0..<\(cols)" }
                if c <= previous { return "row \(r) columns not strictly increasing (\(previous) then \(c))" }
                previous = c
            }
        }
        return nil
    }

    /// The transpose, also in CSR form; entries of each output row are in increasing column order.
    ///
    /// Backward passes multiply by Aᵀ; a precomputed transpose turns that into the same row-parallel SpMM as the
    /// forward pass (no atomics, deterministic summation order).
    public func transposed() -> SparseMatrix { transposedWithPermutation().matrix }

    /// The transpose and, for each of its entries, the index of the same entry in `self`. When only the values of
    /// a matrix change (dropout on sparse features), `permutation` refreshes the transpose's values in O(nnz).
    public func transposedWithPermutation() -> (matrix: SparseMatrix, permutation: [Int]) {
        var counts = [Int](repeating: 0, count: cols + 1)
        for c in columnIndices { counts[Int(c) + 1] += 1 }
        for c in 0..<cols { counts[c + 1] += counts[c] }
        var next = counts
        var outCols = [Int32](repeating: 0, count: nonZeroCount)
        var outVals = [Float](repeating: 0, count: nonZeroCount)
        var permutation = [Int](repeating: 0, count: nonZeroCount)
        for r in 0..<rows {
            for e in rowPointers[r]..<rowPointers[r + 1] {
                let c = Int(columnIndices[e])
                outCols[next[c]] = Int32(r)
                outVals[next[c]] = values[e]
                permutation[next[c]] = e
                next[c] += 1
            }
        }
        let matrix = SparseMatrix(rows: cols, cols: rows, rowPointers: counts, columnIndices: outCols, values: outVals)
        return (matrix, permutation)
    }

    /// The dense form (tests and small reference computations only).
    public func dense() -> Matrix {
        var m = Matrix(rows: rows, cols: cols)
        for r in 0..<rows {
            for e in rowPointers[r]..<rowPointers[r + 1] { m[r, Int(columnIndices[e])] += values[e] }
        }
        return m
    }

    /// Keeps the rows listed, in that order (used to cut a partition's rows out of a global operator).
    public func selectingRows(_ selected: [Int]) -> SparseMatrix {
        var pointers = [0]
        pointers.reserveCapacity(selected.count + 1)
        var cols32 = [Int32](), vals = [Float]()
        for r in selected {
            let range = rowPointers[r]..<rowPointers[r + 1]
            cols32.append(contentsOf: columnIndices[range])
            vals.append(contentsOf: values[range])
            pointers.append(cols32.count)
        }
        return SparseMatrix(rows: selected.count, cols: cols, rowPointers: pointers, columnIndices: cols32, values: vals)
    }
}
