import ArgumentParser
import Foundation
import HaloGraph
import HaloPartition
import HaloTensor
import HaloTraining

/// A check `halo train` makes before it allocates anything large: that parts given with --partitions were cut from
/// the dataset given with --dataset. (The memory checks are the job's: `TrainingJobMemory`.)
extension Train {
    /// With --partitions, a --dataset must be the one the parts were cut from: otherwise the run would silently
    /// train on the parts' data under the other dataset's name. Loads the dataset to fingerprint it.
    func checkDatasetMatches(_ manifest: PartitionManifest, directory: String) throws {
        guard let datasetOption else { return }
        var loading = TrainingJob(configuration: configuration, source: .dataset(datasetOption), ranks: .single)
        loading.memoryHint = memoryHint
        try loading.checkMemoryBeforeLoading(datasetOption, replicas: 1)
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
