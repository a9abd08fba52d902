import HaloGraph
import HaloPartition
import HaloTensor

/// The fuzzer's own judgement of whether loaded data "really is valid", written from the format's definition
/// (`shared/datasets/README.md`, `PartitionStore`'s layout) and not from the readers, so a check a reader forgot
/// shows up as an accepted directory with a problem listed here.
///
/// Each function returns the first problem found, or nil for valid data.
enum FuzzValidity {
    // MARK: Datasets

    static func problem(in dataset: Dataset) -> String? {
        let n = dataset.nodeCount, graph = dataset.graph
        let (sources, destinations) = graph.edgesSortedBySource()
        for e in sources.indices {
            let s = sources[e], d = destinations[e]
            if s < 0 || Int(s) >= n || d < 0 || Int(d) >= n { return "edge \(e) (\(s), \(d)) outside 0..<\(n)" }
            if s == d { return "self loop at edge \(e)" }
            if e > 0 && (sources[e - 1], destinations[e - 1]) >= (s, d) { return "edges not strictly sorted at \(e)" }
        }
        if graph.outDegrees.count != n || graph.inPointers.count != n + 1 { return "graph arrays do not cover \(n) nodes" }
        return problem(features: dataset.features, rows: n)
            ?? problem(labels: dataset.labels, split: dataset.split, rows: n)
    }

    static func problem(features: NodeFeatures, rows: Int) -> String? {
        switch features {
        case .dense(let m):
            if m.rows != rows || m.storage.count != m.rows * m.cols { return "dense features \(m.rows)×\(m.cols) for \(rows) rows" }
            if let k = m.storage.firstIndex(where: { !$0.isFinite }) { return "feature entry \(k) is \(m.storage[k])" }
        case .sparse(let s):
            if s.rows != rows || s.rowPointers.count != rows + 1 { return "sparse features with \(s.rowPointers.count) pointers for \(rows) rows" }
            if s.rowPointers.first != 0 || s.rowPointers.last != s.columnIndices.count || s.values.count != s.columnIndices.count {
                return "sparse feature pointers do not span the \(s.columnIndices.count) entries"
            }
            for r in 0..<rows {
                let range = s.rowPointers[r]..<s.rowPointers[r + 1]
                if range.lowerBound > range.upperBound { return "feature row \(r) pointers decrease" }
                var previous: Int32 = -1
                for e in range {
                    let c = s.columnIndices[e]
                    if c <= previous || Int(c) >= s.cols { return "feature column \(c) in row \(r) out of order or range" }
                    if !s.values[e].isFinite { return "feature value \(s.values[e]) in row \(r)" }
                    previous = c
                }
            }
        }
        return nil
    }

    static func problem(labels: NodeLabels, split: NodeSplit, rows: Int) -> String? {
        let classes = labels.classCount
        switch labels {
        case .singleLabel(let values, _):
            if values.count != rows { return "\(values.count) labels for \(rows) rows" }
            if let k = values.firstIndex(where: { $0 < -1 || Int($0) >= classes }) { return "label \(values[k]) of row \(k) outside -1..<\(classes)" }
        case .multiLabel(let targets, _):
            if targets.count != rows * classes { return "\(targets.count) multi-label targets for \(rows)×\(classes)" }
            if targets.contains(where: { $0 > 1 }) { return "a multi-label target is not 0 or 1" }
        }
        let masks = [split.train, split.validation, split.test]
        if masks.contains(where: { $0.count != rows }) { return "a split mask does not have \(rows) entries" }
        for v in 0..<rows {
            let memberships = masks.filter { $0[v] }.count
            if memberships > 1 { return "row \(v) is in \(memberships) split masks" }
            if memberships == 1, case .singleLabel(let values, _) = labels, values[v] < 0 { return "row \(v) is masked but unlabelled" }
        }
        return nil
    }

    // MARK: Partitions

    /// Checks `parts` (all of them, in rank order) for being the partition of one valid graph: ownership, halo
    /// blocks against their owners, the local CSR against the degrees recomputed from every part's edges, the send
    /// lists against the receivers' halo blocks, and each part's rows.
    static func problem(in parts: [Part]) -> String? {
        guard let first = parts.first else { return "no parts" }
        let p = parts.count, n = first.totalNodeCount
        var owner = [Int](repeating: -1, count: n), localIndex = [Int](repeating: -1, count: n)
        for (r, part) in parts.enumerated() {
            if part.rank != r || part.partCount != p || part.totalNodeCount != n { return "part \(r) says rank \(part.rank) of \(part.partCount), \(part.totalNodeCount) nodes" }
            if part.featureWidth != first.featureWidth || part.classCount != first.classCount
                || part.labels.isMultiLabel != first.labels.isMultiLabel { return "part \(r) has another feature width or label kind" }
            if part.classCount < 1 { return "part \(r) has \(part.classCount) classes" }
            for (i, v) in part.innerGlobalIDs.enumerated() {
                guard v >= 0 && Int(v) < n else { return "part \(r) owns node \(v) outside 0..<\(n)" }
                if owner[Int(v)] >= 0 { return "node \(v) owned by parts \(owner[Int(v)]) and \(r)" }
                owner[Int(v)] = r
                localIndex[Int(v)] = i
            }
        }
        if let v = owner.firstIndex(of: -1) { return "node \(v) owned by no part" }

        // The global edge list, from every part's in-edges: out-degrees are only right against all of it.
        var outEdges = [Int](repeating: 0, count: n), inEdges = [Int](repeating: 0, count: n)
        for part in parts {
            let inner = part.innerCount, local = part.innerGlobalIDs + part.haloGlobalIDs
            if part.inPointers.count != inner + 1 || part.inPointers.first != 0 || part.inPointers.last != part.inSources.count {
                return "part \(part.rank) in-CSR pointers do not span its edges"
            }
            var haloUsed = [Bool](repeating: false, count: part.haloCount)
            for i in 0..<inner {
                let range = part.inPointers[i]..<part.inPointers[i + 1]
                if range.lowerBound > range.upperBound { return "part \(part.rank) row \(i) pointers decrease" }
                var previous: Int32 = -1, readsHalo = false
                for e in range {
                    let s = part.inSources[e]
                    guard s > previous, Int(s) < local.count, Int(s) != i else { return "part \(part.rank) row \(i) source \(s) bad" }
                    if Int(s) >= inner { readsHalo = true; haloUsed[Int(s) - inner] = true }
                    previous = s
                    outEdges[Int(local[Int(s)])] += 1
                }
                inEdges[Int(part.innerGlobalIDs[i])] += range.count
                if readsHalo != (i >= part.centralCount) { return "part \(part.rank) row \(i) central/marginal wrong" }
            }
            if haloUsed.contains(false) { return "part \(part.rank) has a halo node no edge reads" }
        }

        var globalTrain = 0, globalValidation = 0, globalTest = 0
        for part in parts {
            let r = part.rank, inner = part.innerCount, local = part.innerGlobalIDs + part.haloGlobalIDs
            // Halo: blocks in rank order, each owned by its rank, ascending, none of this part's own.
            if part.haloRanges.count != p || part.sendLists.count != p { return "part \(r) has \(part.haloRanges.count) halo blocks" }
            var next = 0
            for (q, range) in part.haloRanges.enumerated() {
                if range.lowerBound != next { return "part \(r) halo block \(q) not contiguous" }
                next = range.upperBound
                if q == r && !range.isEmpty { return "part \(r) has a halo block of its own nodes" }
                let block = part.haloGlobalIDs[range]
                if block.contains(where: { $0 < 0 || Int($0) >= n || owner[Int($0)] != q }) { return "part \(r) halo block \(q) holds a node \(q) does not own" }
                if zip(block, block.dropFirst()).contains(where: { $0 >= $1 }) { return "part \(r) halo block \(q) not ascending" }
            }
            if next != part.haloCount { return "part \(r) halo blocks do not cover the halo" }
            // Degrees: global, self loop included, from the whole edge list.
            let degrees = part.degrees
            if degrees.inDegrees.count != local.count || degrees.outDegrees.count != local.count { return "part \(r) degrees do not cover its local nodes" }
            for (k, v) in local.enumerated() {
                if Int(degrees.outDegrees[k]) != outEdges[Int(v)] + 1 {
                    return "part \(r) local node \(k) (node \(v)) out-degree \(degrees.outDegrees[k]), the edges give \(outEdges[Int(v)] + 1)"
                }
                if Int(degrees.inDegrees[k]) != inEdges[Int(v)] + 1 {
                    return "part \(r) local node \(k) (node \(v)) in-degree \(degrees.inDegrees[k]), the edges give \(inEdges[Int(v)] + 1)"
                }
            }
            // What r sends to q is exactly q's halo block from r, in order.
            for q in 0..<p {
                let list = part.sendLists[q]
                if list.contains(where: { $0 < 0 || Int($0) >= inner }) { return "part \(r) sends a non-inner row to \(q)" }
                let sent = list.map { part.innerGlobalIDs[Int($0)] }
                let expected = q == r ? [] : Array(parts[q].haloGlobalIDs[parts[q].haloRanges[r]])
                if sent != expected { return "part \(r) sends \(sent.count) rows to \(q), whose halo block from \(r) has \(expected.count) (or other ids)" }
            }
            if let problem = problem(features: part.features, rows: inner) ?? problem(labels: part.labels, split: part.split, rows: inner) {
                return "part \(r): \(problem)"
            }
            globalTrain += part.split.trainCount
            globalValidation += part.split.validationCount
            globalTest += part.split.testCount
        }
        let totals = GlobalSplitCounts(train: globalTrain, validation: globalValidation, test: globalTest)
        if let part = parts.first(where: { $0.globalSplitCounts != totals }) { return "part \(part.rank) records split sizes \(part.globalSplitCounts), the masks give \(totals)" }
        return nil
    }
}
