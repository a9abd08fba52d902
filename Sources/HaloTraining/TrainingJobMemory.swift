import HaloGraph
import HaloPartition

/// The job's memory checks: a run whose estimated peak exceeds what this process can have (or `memoryBudget`) is
/// refused before anything large is allocated (`MemoryEstimate`), with the caller's `memoryHint`.
///
/// A run is checked twice: before its data is loaded, from the sizes known then (a synthetic spec's, or a
/// partition manifest's), and, for a dataset partitioned here, again once the parts and their halos exist, which
/// is when the messages and halo rows (often the largest terms) are known. Both come before the first epoch.
///
/// Each check also picks the column blocks layers are evaluated in (`ColumnBlocks`), unless the configuration
/// fixes them: the fewest of `automaticColumnBlocks` whose estimate fits, so a run that fits whole is evaluated
/// whole, and a run is refused only when even the most blocks do not fit. The last check's choice is the run's.
extension TrainingJob {
    /// The column block counts an automatic choice tries, in order.
    public static let automaticColumnBlocks = [1, 2, 4, 8]

    /// - Parameters:
    ///   - rows: node rows (inner plus halo) held by the ranks of this host.
    ///   - featureBytes: the input features those ranks hold.
    ///   - replicas: ranks on this host, each with its own copy of the model and optimiser state.
    ///   - wholeGraph: whether this is one process training the whole graph, not a bound for partitioned ranks.
    ///   - precomputedFirstLayer, sparseFeatures, forwardThroughFeatures: the first layer's plan once known (before
    ///     it: the configuration's precompute setting, dense features, no hybrid forward).
    /// Returns the column blocks to use (the run's, for the whole graph once its plan is known).
    @discardableResult
    func checkMemory(rows: Int, inputWidth: Int, classes: Int, featureBytes: Double, replicas: Int,
                     storedEdges: Int = 0, wholeGraph: Bool, precomputedFirstLayer: Bool? = nil,
                     sparseFeatures: Bool = false, forwardThroughFeatures: Bool = false) throws -> Int {
        try fit { blocks in
            MemoryEstimate(
                model: configuration.model, rows: rows, inputWidth: inputWidth, classes: classes,
                featureBytes: featureBytes, replicas: replicas, storedEdges: storedEdges,
                precomputedFirstLayer: precomputedFirstLayer ?? configuration.quantization.precomputeFirstLayer ?? false,
                sparseFeatures: sparseFeatures, columnBlocks: blocks, wholeGraph: wholeGraph,
                forwardThroughFeatures: forwardThroughFeatures)
        }
    }

    /// The check for parts built here (all of an in-process run's, or an MPI rank's own): their halos and send lists
    /// give the messages. In-process ranks share their messages' buffers. Returns the column blocks to use.
    func checkMemory(parts: [Part], inProcess: Bool, ranksOnHost: Int = 1) throws -> Int {
        guard let first = parts.first else { return configuration.columnBlocks ?? 1 }
        return try checkPartitioned(
            parts.map {
                MemoryEstimate.RankRows(inner: $0.innerCount, halo: $0.haloCount, sent: $0.sendLists.reduce(0) { $0 + $1.count })
            },
            inputWidth: first.features.width, classes: first.classCount,
            featureBytes: parts.reduce(0) { $0 + Self.featureBytes($1.features) },
            storedEdges: parts.reduce(0) { $0 + $1.inSources.count + $1.innerCount },
            sparseFeatures: { if case .sparse = first.features { true } else { false } }(), inProcess: inProcess,
            ranksOnHost: ranksOnHost, worldSize: first.partCount)
    }

    /// The estimate for partitioned ranks, this host's (`ranks` and the totals are theirs), checked. An MPI rank
    /// counts the other ranks on its host as its own size (they start together and compete for the same memory).
    /// `worldSize` is the run's rank count (a compressed gradient all-reduce keeps residuals when it is above one).
    private func checkPartitioned(
        _ ranks: [MemoryEstimate.RankRows], inputWidth: Int, classes: Int, featureBytes: Double, storedEdges: Int,
        sparseFeatures: Bool, inProcess: Bool, ranksOnHost: Int, worldSize: Int
    ) throws -> Int {
        let copies = inProcess ? 1 : max(ranksOnHost, 1)
        return try fit { blocks in MemoryEstimate(
            model: configuration.model, ranks: Array(Array(repeating: ranks, count: copies).joined()),
            inputWidth: inputWidth, classes: classes, featureBytes: featureBytes * Double(copies),
            storedEdges: storedEdges * copies,
            precomputedFirstLayer: configuration.quantization.precomputeFirstLayer ?? (configuration.method.schedule == .pipelined),
            sparseFeatures: sparseFeatures, sharedMessages: inProcess, partStructure: true,
            // A quantized message takes at most 8 bits per value; pipelined exchanges keep blocks between epochs.
            messageBytesPerValue: configuration.method.precision == .full ? 4 : 1,
            pipelinedCaches: configuration.method.schedule == .pipelined, columnBlocks: blocks,
            compressedGradients: (configuration.gradientCompression ?? .none) != .none && worldSize > 1)
        }
    }

    /// The column blocks to evaluate layers in: the configuration's, or the fewest automatic count whose
    /// `estimate` fits what this process may have (or the budget); when none fits, throws the refusal of the
    /// smallest estimate. Methods that exchange whole rows (`TrainingMethod.allowsColumnBlocks`) try 1 only.
    private func fit(_ estimate: (Int) -> MemoryEstimate) throws -> Int {
        if let fixed = configuration.columnBlocks, fixed != 1 {
            guard fixed >= 1 else { throw TrainingSetupError(message: "column blocks must be at least 1, got \(fixed)") }
            guard configuration.method.allowsColumnBlocks else {
                throw TrainingSetupError(message: "\(configuration.method.rawValue) cannot evaluate layers in column blocks (\(fixed) asked): its messages are quantized or cached whole; use vanilla or adaqp-p, or leave the blocks to the memory estimate")
            }
        }
        let candidates = configuration.columnBlocks.map { [$0] }
            ?? (configuration.method.allowsColumnBlocks ? Self.automaticColumnBlocks : [1])
        let budget = memoryBudget.map { (bytes: $0, limit: "the memory budget leaves") }
            ?? MemoryEstimate.availableToThisProcess.map { (bytes: $0, limit: "this machine has") }
        guard let budget else { return candidates[0] }
        let estimates = candidates.map { (blocks: $0, estimate: estimate($0)) }
        if let fitting = estimates.first(where: { $0.estimate.totalBytes <= budget.bytes }) { return fitting.blocks }
        // None fits: the refusal names the smallest estimate (blocks need a matrix of their own in backward, so
        // more blocks are not always less memory).
        let smallest = estimates.min { $0.estimate.totalBytes < $1.estimate.totalBytes }!
        try smallest.estimate.check(availableBytes: budget.bytes, limit: budget.limit, hint: memoryHint)
        return smallest.blocks
    }

    /// The check for a dataset before it is loaded, where its sizes are known without loading it: a synthetic spec
    /// is refused before a single node is generated. Directories are checked after loading, since the reader
    /// allocates only what the files hold.
    public func checkMemoryBeforeLoading(_ name: String, replicas: Int, rowsShare: Double = 1, featureCopies: Int = 1) throws {
        guard SyntheticGraphSpec.isSpecString(name) else { return }
        let spec = try SyntheticGraphSpec(parsing: name)
        let features = Double(spec.nodes) * Double(spec.featureWidth) * Double(MemoryLayout<Float>.size)
        _ = try checkMemory(rows: Int(Double(spec.nodes) * rowsShare), inputWidth: spec.featureWidth, classes: spec.classes,
                            featureBytes: features * Double(featureCopies), replicas: replicas,
                            wholeGraph: replicas == 1 && rowsShare == 1)
    }

    /// The check for parts on disk, from the manifest alone: `ranks` are the parts this host trains, and
    /// `inProcess` says whether they are threads of this process (sharing their messages).
    func checkMemory(for manifest: PartitionManifest, ranks: [Int], inProcess: Bool, ranksOnHost: Int = 1) throws -> Int {
        let featureFiles: Set = ["features.f32", "feat_indptr.i64", "feat_indices.i32", "feat_values.f32"]
        var rows: [MemoryEstimate.RankRows] = [], featureBytes = 0.0, edges = 0, sparse = false
        for r in ranks {
            let entry = manifest.partList[r]
            rows.append(MemoryEstimate.RankRows(inner: entry.inner, halo: entry.halo, sent: entry.send))
            edges += entry.edges + entry.inner
            featureBytes += Double(entry.files.filter { featureFiles.contains($0.name) }.reduce(0) { $0 + $1.bytes })
            sparse = sparse || entry.files.contains { $0.name == "feat_values.f32" }
        }
        return try checkPartitioned(rows, inputWidth: manifest.dataset.featureWidth, classes: manifest.dataset.classes,
                             featureBytes: featureBytes, storedEdges: edges, sparseFeatures: sparse,
                             inProcess: inProcess, ranksOnHost: ranksOnHost, worldSize: manifest.partList.count)
    }

    static func featureBytes(_ features: NodeFeatures) -> Double {
        switch features {
        case .dense(let m): Double(m.count) * Double(MemoryLayout<Float>.size)
        case .sparse(let s): Double(s.rows + 1) * 8 + Double(s.nonZeroCount) * 8
        }
    }
}
