import ArgumentParser
import Foundation
import HaloGraph
import HaloPartition
import HaloTensor
import HaloTraining

/// Checks `halo train` makes before it allocates anything large: that the run fits in this machine's memory, and
/// that parts given with --partitions were cut from the dataset given with --dataset.
extension Train {
    /// Refuses a run whose estimated peak memory exceeds this machine's physical memory.
    ///
    /// - Parameters:
    ///   - rows: node rows (inner plus halo) held by the ranks of this host.
    ///   - featureBytes: the input features those ranks hold.
    ///   - replicas: ranks on this host, each with its own copy of the model and optimiser state.
    func checkMemory(rows: Int, inputWidth: Int, classes: Int, featureBytes: Double, replicas: Int) throws {
        guard let available = MemoryEstimate.physicalMemoryBytes else { return }
        let estimate = MemoryEstimate(
            model: configuration.model, rows: rows, inputWidth: inputWidth, classes: classes,
            featureBytes: featureBytes, replicas: replicas, precomputedFirstLayer: precomputeLayer0 ?? false)
        try estimate.check(availableBytes: available, hint: """
            lower --hidden (\(hidden)) or --layers (\(layers)), use a smaller dataset, or spread the ranks over several \
            machines with mpirun (see README)
            """)
    }

    /// The memory check for a dataset before it is loaded, where its sizes are known without loading it: a
    /// synthetic spec is refused before a single node is generated. Directories are checked after loading
    /// (`checkMemory(for:replicas:)`), since the reader allocates only what the files hold.
    func checkMemoryBeforeLoading(replicas: Int, rowsShare: Double = 1, featureCopies: Int = 1) throws {
        guard SyntheticGraphSpec.isSpecString(dataset) else { return }
        let spec = try SyntheticGraphSpec(parsing: dataset)
        let features = Double(spec.nodes) * Double(spec.featureWidth) * Double(MemoryLayout<Float>.size)
        try checkMemory(rows: Int(Double(spec.nodes) * rowsShare), inputWidth: spec.featureWidth, classes: spec.classes,
                        featureBytes: features * Double(featureCopies), replicas: replicas)
    }

    /// The memory check for a loaded dataset (see `checkMemoryBeforeLoading`).
    func checkMemory(for data: Dataset, replicas: Int, rowsShare: Double = 1, featureCopies: Int = 1) throws {
        try checkMemory(rows: Int(Double(data.nodeCount) * rowsShare), inputWidth: data.featureWidth,
                        classes: data.classCount, featureBytes: Self.featureBytes(data.features) * Double(featureCopies),
                        replicas: replicas)
    }

    /// The memory check for parts on disk, from the manifest alone: `ranks` are the parts this host trains.
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

    /// With --partitions, a --dataset must be the one the parts were cut from: otherwise the run would silently
    /// train on the parts' data under the other dataset's name. Loads the dataset to fingerprint it.
    func checkDatasetMatches(_ manifest: PartitionManifest, directory: String) throws {
        guard let datasetOption else { return }
        try checkMemoryBeforeLoading(replicas: 1)
        let data = try DatasetSource(datasetOption).load(note: noteOnStandardError)
        let fingerprint = DatasetFingerprint(data)
        guard fingerprint == manifest.dataset.fingerprint else {
            throw TrainingSetupError(message: """
                --dataset \(datasetOption) is not the dataset the parts in \(directory) were cut from: its fingerprint \
                is \(fingerprint), the parts' is \(manifest.dataset.fingerprint) (dataset "\(manifest.dataset.name)", \
                \(manifest.dataset.nodes) nodes); give the dataset they were partitioned from, or leave --dataset out
                """)
        }
    }
}
