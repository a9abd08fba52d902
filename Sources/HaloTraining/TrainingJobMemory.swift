import HaloGraph
import HaloPartition

/// The job's memory checks: a run whose estimated peak exceeds this machine's physical memory is refused before
/// anything large is allocated (`MemoryEstimate`), with the caller's `memoryHint`.
extension TrainingJob {
    /// - Parameters:
    ///   - rows: node rows (inner plus halo) held by the ranks of this host.
    ///   - featureBytes: the input features those ranks hold.
    ///   - replicas: ranks on this host, each with its own copy of the model and optimiser state.
    func checkMemory(rows: Int, inputWidth: Int, classes: Int, featureBytes: Double, replicas: Int) throws {
        guard let available = MemoryEstimate.physicalMemoryBytes else { return }
        let estimate = MemoryEstimate(
            model: configuration.model, rows: rows, inputWidth: inputWidth, classes: classes, featureBytes: featureBytes,
            replicas: replicas, precomputedFirstLayer: configuration.quantization.precomputeFirstLayer ?? false)
        try estimate.check(availableBytes: available, hint: memoryHint)
    }

    /// The check for a dataset before it is loaded, where its sizes are known without loading it: a synthetic spec
    /// is refused before a single node is generated. Directories are checked after loading, since the reader
    /// allocates only what the files hold.
    public func checkMemoryBeforeLoading(_ name: String, replicas: Int, rowsShare: Double = 1, featureCopies: Int = 1) throws {
        guard SyntheticGraphSpec.isSpecString(name) else { return }
        let spec = try SyntheticGraphSpec(parsing: name)
        let features = Double(spec.nodes) * Double(spec.featureWidth) * Double(MemoryLayout<Float>.size)
        try checkMemory(rows: Int(Double(spec.nodes) * rowsShare), inputWidth: spec.featureWidth, classes: spec.classes,
                        featureBytes: features * Double(featureCopies), replicas: replicas)
    }

    /// The check for parts on disk, from the manifest alone: `ranks` are the parts this host trains.
    func checkMemory(for manifest: PartitionManifest, ranks: [Int]) throws {
        let featureFiles: Set = ["features.f32", "feat_indptr.i64", "feat_indices.i32", "feat_values.f32"]
        var rows = 0, featureBytes = 0.0
        for r in ranks {
            let entry = manifest.partList[r]
            rows += entry.inner + entry.halo
            featureBytes += Double(entry.files.filter { featureFiles.contains($0.name) }.reduce(0) { $0 + $1.bytes })
        }
        try checkMemory(rows: rows, inputWidth: manifest.dataset.featureWidth, classes: manifest.dataset.classes,
                        featureBytes: featureBytes, replicas: ranks.count)
    }

    static func featureBytes(_ features: NodeFeatures) -> Double {
        switch features {
        case .dense(let m): Double(m.count) * Double(MemoryLayout<Float>.size)
        case .sparse(let s): Double(s.rows + 1) * 8 + Double(s.nonZeroCount) * 8
        }
    }
}
