import Foundation
import HaloGraph
import HaloPartition
import HaloTensor
import HaloTestSupport

/// One directory the fuzzer mutates copies of, with the directories of the same format whose files it may swap in.
struct FuzzTarget: Sendable {
    var name: String
    var image: FuzzDirectoryImage
    var donors: [FuzzDirectoryImage]
}

/// The valid directories the fuzzer starts from, written by the project's own writers: every layout the readers
/// accept (dense and sparse features, single- and multi-label, with and without checksums), small enough that a case
/// costs milliseconds, and partitions of 2, 3 and 4 parts (3 and more, so that a part has two peers whose send lists
/// and halo blocks can be confused with each other; 4 of a dozen nodes, for empty and one-node parts).
enum FuzzCorpus {
    /// Dense features, single-label, checksums: the synthetic generator's output.
    static func synthetic(seed: UInt64) throws -> Dataset {
        try SyntheticGraphSpec(parsing: "synthetic:nodes=120,classes=4,features=6,degree=5,seed=\(seed)").generate()
    }

    /// Sparse features and multi-label targets, derived from a synthetic graph: the layouts the generator lacks.
    static func multiLabel(seed: UInt64) throws -> Dataset {
        var dataset = try SyntheticGraphSpec(parsing: "synthetic:nodes=90,classes=3,features=10,degree=4,seed=\(seed)").generate()
        let dense = dataset.features.denseMatrix()
        var triplets: [(row: Int, col: Int, value: Float)] = []
        for r in 0..<dense.rows {
            for c in 0..<dense.cols where dense[r, c] > 0.3 { triplets.append((r, c, dense[r, c])) }
        }
        dataset.features = .sparse(SparseMatrix(rows: dense.rows, cols: dense.cols, triplets: triplets))
        guard case .singleLabel(let classes, let count) = dataset.labels else { return dataset }
        var targets = [UInt8](repeating: 0, count: classes.count * count)
        for (v, c) in classes.enumerated() where c >= 0 {
            targets[v * count + Int(c)] = 1
            targets[v * count + (Int(c) + 1) % count] = UInt8(v % 2)
        }
        dataset.labels = .multiLabel(targets: targets, classCount: count)
        dataset.name = "multilabel"
        return dataset
    }

    /// Cora from `../shared/datasets` beside the repository, when present.
    static var coraDirectory: URL? {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let url = root.deletingLastPathComponent().appendingPathComponent("shared/datasets/cora")
        return FileManager.default.fileExists(atPath: url.appendingPathComponent("meta.json").path) ? url : nil
    }

    /// Every target, built under `scratch`.
    static func targets(in scratch: URL) throws -> [FuzzTarget] {
        var count = 0
        func image(_ dataset: Dataset) throws -> FuzzDirectoryImage {
            count += 1
            let dir = scratch.appendingPathComponent("base-\(count)")
            try DatasetFormat.write(dataset, to: dir)
            return try FuzzDirectoryImage(reading: dir)
        }
        func image(_ dataset: Dataset, parts: Int, method: PartitionMethod, seed: UInt64) throws -> FuzzDirectoryImage {
            count += 1
            let dir = scratch.appendingPathComponent("base-\(count)")
            let partitioning = try Partitioner.partition(graph: dataset.graph, parts: parts, method: method, seed: seed)
            try PartitionStore.write(dataset: dataset, partitioning: partitioning, to: dir)
            return try FuzzDirectoryImage(reading: dir)
        }

        let synthetic = try Self.synthetic(seed: 1), otherSynthetic = try Self.synthetic(seed: 2)
        let multi = try Self.multiLabel(seed: 3), otherMulti = try Self.multiLabel(seed: 4)
        let datasetImages = [try image(synthetic), try image(otherSynthetic), try image(multi), try image(otherMulti)]
        var targets = [
            FuzzTarget(name: "synthetic dataset", image: datasetImages[0], donors: Array(datasetImages[1...])),
            FuzzTarget(name: "multi-label sparse dataset", image: datasetImages[2], donors: [datasetImages[0], datasetImages[3]]),
        ]
        // Donors of a partition: the same graph cut another way (same shapes, other content), and another graph.
        let p3 = [try image(synthetic, parts: 3, method: .metis, seed: 1), try image(synthetic, parts: 3, method: .random, seed: 5),
                  try image(otherSynthetic, parts: 3, method: .metis, seed: 1)]
        let p2 = [try image(multi, parts: 2, method: .random, seed: 2), try image(multi, parts: 2, method: .metis, seed: 1)]
        targets.append(FuzzTarget(name: "3 parts of the synthetic dataset", image: p3[0], donors: Array(p3[1...])))
        targets.append(FuzzTarget(name: "2 parts of the multi-label dataset", image: p2[0], donors: [p2[1]]))
        // A dozen nodes in four parts: empty or one-node parts, empty halos and send lists, files of a few bytes,
        // where a single edit is most often still well-formed.
        let tiny = try SyntheticGraphSpec(parsing: "synthetic:nodes=12,classes=2,features=3,degree=2,seed=5").generate()
        let tinyImages = [try image(tiny), try image(tiny, parts: 4, method: .random, seed: 3), try image(tiny, parts: 4, method: .random, seed: 4)]
        targets.append(FuzzTarget(name: "tiny dataset", image: tinyImages[0], donors: [datasetImages[0]]))
        targets.append(FuzzTarget(name: "4 parts of the tiny dataset", image: tinyImages[1], donors: [tinyImages[2]]))

        if let cora = coraDirectory {
            // As shipped (no checksums: the reader's unverified path) and as Halo writes it (with checksums).
            let shipped = try FuzzDirectoryImage(reading: cora)
            let dataset = try DatasetFormat.read(directory: cora)
            let sealed = try image(dataset)
            targets.append(FuzzTarget(name: "cora as shipped", image: shipped, donors: [sealed]))
            targets.append(FuzzTarget(name: "cora with checksums", image: sealed, donors: [shipped]))
            let coraParts = [try image(dataset, parts: 2, method: .metis, seed: 1), try image(dataset, parts: 2, method: .random, seed: 1)]
            targets.append(FuzzTarget(name: "2 parts of cora", image: coraParts[0], donors: [coraParts[1]]))
        }
        return targets
    }
}
