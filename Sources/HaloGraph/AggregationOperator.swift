import HaloTensor

/// How a layer combines a node's in-neighbourhood (with one self loop).
public enum Aggregation: String, Sendable, CaseIterable, Codable {
    /// GCN: `Â = D_in^-1/2 (A + I) D_out^-1/2`, weight of edge u→v is `d_in(v)^-1/2 · d_out(u)^-1/2`.
    case gcn
    /// GraphSAGE mean over `N(v) ∪ {v}`: weight `1 / d_in(v)`.
    case mean

    /// The weight of edge `u → v` given global degrees with self loops.
    @inlinable
    public func weight(destinationInDegree dIn: Int32, sourceOutDegree dOut: Int32) -> Float {
        switch self {
        case .gcn: return 1 / (Float(dIn).squareRoot() * Float(dOut).squareRoot())
        case .mean: return 1 / Float(dIn)
        }
    }
}

extension Graph {
    /// The normalised aggregation operator over all nodes: row `v` holds the weights of `v`'s in-neighbours and
    /// of `v` itself (self loop added once), columns sorted.
    public func aggregationOperator(_ kind: Aggregation) -> SparseMatrix {
        aggregationOperator(kind, rows: Array(0..<nodeCount), degrees: degreesWithSelfLoops, columnCount: nodeCount) { Int32($0) }
    }

    /// The operator restricted to `rows` (global ids, in output-row order), with global degrees `degrees` and
    /// columns renumbered by `column(globalID)`; the result has as many columns as the largest mapped id + 1.
    ///
    /// A partition passes its inner nodes as rows and maps inner and halo ids to its local numbering; the weights
    /// stay those of the global operator because the degrees are global.
    public func aggregationOperator(
        _ kind: Aggregation, rows: [Int], degrees: NodeDegrees, columnCount: Int? = nil, column: (Int) -> Int32
    ) -> SparseMatrix {
        var pointers = [Int](repeating: 0, count: rows.count + 1)
        for (i, v) in rows.enumerated() { pointers[i + 1] = pointers[i] + inDegree(v) + 1 }
        let nnz = pointers[rows.count]
        var cols = [Int32](repeating: 0, count: nnz)
        var vals = [Float](repeating: 0, count: nnz)
        var maxColumn: Int32 = -1
        var entries: [(Int32, Float)] = []
        for (i, v) in rows.enumerated() {
            entries.removeAll(keepingCapacity: true)
            let dIn = degrees.inDegrees[v]
            entries.append((column(v), kind.weight(destinationInDegree: dIn, sourceOutDegree: degrees.outDegrees[v])))
            for u in inNeighbors(v) {
                entries.append((column(Int(u)), kind.weight(destinationInDegree: dIn, sourceOutDegree: degrees.outDegrees[Int(u)])))
            }
            entries.sort { $0.0 < $1.0 }
            for (k, e) in entries.enumerated() {
                cols[pointers[i] + k] = e.0
                vals[pointers[i] + k] = e.1
                maxColumn = max(maxColumn, e.0)
            }
        }
        return SparseMatrix(rows: rows.count, cols: columnCount ?? Int(maxColumn + 1), rowPointers: pointers, columnIndices: cols, values: vals)
    }
}
