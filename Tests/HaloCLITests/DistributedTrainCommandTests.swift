import Foundation
import XCTest

/// `halo train` end to end, as users run it: one process, ranks as threads, and ranks as MPI processes must all
/// train the same model (equal per-epoch losses and accuracies up to float summation order), and a failing rank
/// must end the whole job with a message naming it.
final class DistributedTrainCommandTests: CommandTestCase {
    static let dataset = "synthetic:nodes=1500,classes=4,features=16,degree=8,signal=1,seed=2"
    static let model = ["--model", "sage", "--layers", "3", "--hidden", "24", "--dropout", "0.5",
                        "--input-dropout", "0.2", "--epochs", "15", "--seed", "5", "--threads", "1", "--quiet"]
    /// Relative tolerance on per-epoch losses (see DistributedEquivalenceTests: float summation order only).
    static let tolerance = 1e-4

    private struct Epoch: Decodable, Equatable {
        var loss: Double
        var train_acc: Double?
        var val_acc: Double?
        var test_acc: Double?
    }

    private struct Report: Decodable {
        var epochs: [Epoch]
        var bytes_sent_per_epoch: Double
        var best_val_accuracy: Double?
    }

    /// The pipelined record of one (layer, direction) in an epoch.
    private struct PipelineSite: Decodable {
        var block_ages: [Int]
        var bypasses: Int
    }

    private struct PipelineEpoch: Decodable { var pipeline: [PipelineSite]? }
    private struct PipelineReport: Decodable { var epochs: [PipelineEpoch] }

    private func train(_ extra: [String], name: String, ranks: Int? = nil, dataset: String = dataset,
                       model: [String] = model) throws -> Report {
        let json = scratch.appendingPathComponent("\(name).json")
        let arguments = ["train", "--dataset", dataset, "--json-out", json.path] + model + extra
        let outcome: Outcome
        if let ranks {
            outcome = try run(try mpirun(), launcherArguments(ranks: ranks) + [try halo().path] + arguments + ["--transport", "mpi"],
                              timeout: 300)
        } else {
            outcome = try run(try halo(), arguments, timeout: 300)
        }
        XCTAssertEqual(outcome.status, 0, "\(name): \(outcome)")
        return try JSONDecoder().decode(Report.self, from: Data(contentsOf: json))
    }

    private func assertSameTraining(_ reference: Report, _ other: Report, _ label: String) {
        XCTAssertEqual(other.epochs.count, reference.epochs.count, label)
        for (i, (a, b)) in zip(reference.epochs, other.epochs).enumerated() {
            XCTAssertEqual(b.loss, a.loss, accuracy: Self.tolerance * max(1, abs(a.loss)), "\(label) epoch \(i) loss")
            for (x, y) in [(a.train_acc, b.train_acc), (a.val_acc, b.val_acc), (a.test_acc, b.test_acc)] {
                XCTAssertEqual(y ?? -1, x ?? -1, accuracy: 0.003, "\(label) epoch \(i) accuracy")
            }
        }
    }

    func testEveryTransportAndRankCountTrainsTheSingleProcessModel() throws {
        let reference = try train([], name: "single")
        XCTAssertEqual(reference.bytes_sent_per_epoch, 0)
        for parts in [2, 4] {
            let local = try train(["--parts", String(parts)], name: "local-\(parts)")
            assertSameTraining(reference, local, "local transport, \(parts) ranks")
            XCTAssertGreaterThan(local.bytes_sent_per_epoch, 0)
        }
        _ = try mpirun()
        for ranks in [1, 2, 4] {
            let mpi = try train([], name: "mpi-\(ranks)", ranks: ranks)
            assertSameTraining(reference, mpi, "MPI, \(ranks) ranks")
        }
    }

    /// Layers evaluated in column blocks train the unblocked model, on one process, on ranks as threads and as MPI
    /// processes (every rank must exchange the same blocks); a 64-wide hidden layer is cut into two or more.
    func testColumnBlocksTrainTheSameModelOnEveryTransport() throws {
        let model = ["--model", "sage", "--layers", "3", "--hidden", "64", "--dropout", "0.5", "--input-dropout", "0.2",
                     "--epochs", "6", "--seed", "5", "--threads", "1", "--quiet"]
        let reference = try train(["--column-blocks", "1"], name: "whole", model: model)
        assertSameTraining(reference, try train(["--column-blocks", "4"], name: "blocks-single", model: model), "one process, 4 blocks")
        let local = try train(["--parts", "3", "--column-blocks", "2"], name: "blocks-local", model: model)
        assertSameTraining(reference, local, "3 ranks as threads, 2 blocks")
        // The same rows travel, in blocks (each block's message has its own header).
        let wholeLocal = try train(["--parts", "3", "--column-blocks", "1"], name: "whole-local", model: model)
        XCTAssertEqual(local.bytes_sent_per_epoch, wholeLocal.bytes_sent_per_epoch, accuracy: wholeLocal.bytes_sent_per_epoch / 1000)
        _ = try mpirun()
        assertSameTraining(reference, try train(["--column-blocks", "2"], name: "blocks-mpi", ranks: 2, model: model), "MPI, 2 ranks, 2 blocks")
    }

    /// Compressed gradient sums are the same arithmetic on every transport (each rank decodes the same bytes): ranks
    /// as threads and as MPI processes train the same model, which learns as the float32 one does, and the all-reduce
    /// sends fewer bytes.
    func testCompressedGradientsTrainTheSameModelOnEveryTransport() throws {
        let float32 = try train(["--parts", "3"], name: "grad-none")
        for compression in ["bf16", "int8"] {
            let local = try train(["--parts", "3", "--grad-compression", compression], name: "grad-\(compression)-local")
            XCTAssertLessThan(local.bytes_sent_per_epoch, float32.bytes_sent_per_epoch, compression)
            XCTAssertEqual(local.best_val_accuracy ?? 0, float32.best_val_accuracy ?? 1, accuracy: 0.05, compression)
            _ = try mpirun()
            let mpi = try train(["--grad-compression", compression], name: "grad-\(compression)-mpi", ranks: 3)
            assertSameTraining(local, mpi, "\(compression): 3 ranks as threads and as MPI processes")
            XCTAssertLessThan(mpi.bytes_sent_per_epoch, float32.bytes_sent_per_epoch, "\(compression) over MPI")
        }
    }

    /// The first layer's weight gradient summed in pieces (`--weight-gradient-pieces`, here three of a 576 × 256
    /// weight, three 192-row tiles) trains the same model as summing it whole: bit for bit on ranks as threads, up to MPI's summation
    /// order over MPI, and so does the cut two MPI ranks make from the measured sum. The report records both.
    /// With int8 gradients the pieces are buckets of their own, whose rounding differs, so there the count shows
    /// in the model: that it reaches the layer. A count out of range is refused by name.
    func testWeightGradientInPiecesTrainsTheSameModelOnEveryTransport() throws {
        let dataset = "synthetic:nodes=600,classes=3,features=576,degree=6,seed=4"
        let model = ["--model", "gcn", "--layers", "2", "--hidden", "256", "--dropout", "0.5", "--epochs", "4",
                     "--seed", "3", "--threads", "1", "--quiet"]
        let whole = try train(["--parts", "2", "--weight-gradient-pieces", "1"], name: "pieces-1", dataset: dataset, model: model)
        let pieces = try train(["--parts", "2", "--weight-gradient-pieces", "3"], name: "pieces-3", dataset: dataset, model: model)
        XCTAssertEqual(pieces.epochs, whole.epochs, "3 pieces against 1, ranks as threads")
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: scratch.appendingPathComponent("pieces-3.json")))
        XCTAssertEqual(((config as? [String: Any])?["config"] as? [String: Any])?["weight_gradient_pieces"] as? Int, 3)
        let int8 = ["--parts", "2", "--grad-compression", "int8"]
        let int8Whole = try train(int8 + ["--weight-gradient-pieces", "1"], name: "int8-1", dataset: dataset, model: model)
        let int8Pieces = try train(int8 + ["--weight-gradient-pieces", "3"], name: "int8-3", dataset: dataset, model: model)
        XCTAssertNotEqual(int8Pieces.epochs.map(\.loss), int8Whole.epochs.map(\.loss), "int8 rounds other buckets")
        _ = try mpirun()
        let mpi = try train(["--weight-gradient-pieces", "3"], name: "pieces-3-mpi", ranks: 2, dataset: dataset, model: model)
        assertSameTraining(whole, mpi, "3 pieces over MPI against 1 as threads")
        // Without a count, two MPI ranks with the host's calibration cut by the measured sum as well: the report
        // says how, and the model is still the whole gradient's.
        let measured = try train([], name: "pieces-measured-mpi", ranks: 2, dataset: dataset, model: model)
        assertSameTraining(whole, measured, "a measured cut over MPI against 1 piece as threads")
        // Two MPI ranks add a + b whatever the cut: bit for bit the model of three equal pieces over MPI.
        XCTAssertEqual(measured.epochs, mpi.epochs, "a measured cut against 3 pieces, both over MPI")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: scratch.appendingPathComponent("pieces-measured-mpi.json")))
        let schedule = ((report as? [String: Any])?["first_layer_plan"] as? [String: Any])?["weight_gradient_schedule"] as? [String: Any]
        XCTAssertEqual((schedule?["rows_per_piece"] as? [Int])?.reduce(0, +), 576, "\(String(describing: schedule))")
        for bad in ["0", "9"] {
            let outcome = try run(try halo(), ["train", "--dataset", dataset, "--weight-gradient-pieces", bad], timeout: 60)
            XCTAssertNotEqual(outcome.status, 0)
            XCTAssertTrue(outcome.stderr.contains("--weight-gradient-pieces must be in 1...8, got \(bad)"), "\(outcome)")
        }
    }

    /// Without input dropout a single rank aggregates dense input features once by default; that must be the same
    /// model as aggregating every epoch and as ranks that exchange layer 0 every epoch. (The fixed thresholds'
    /// default: with the host calibration, whether precomputing is chosen depends on this machine's rates.)
    func testPrecomputedFirstAggregationIsTheDefaultModelOnOneRank() throws {
        let model = ["--model", "gcn", "--layers", "2", "--hidden", "24", "--dropout", "0.5", "--epochs", "12",
                     "--seed", "3", "--threads", "1", "--quiet", "--calibration", "off"]
        let precomputed = try train([], name: "default", model: model)
        let perEpoch = try train(["--no-precompute-layer0"], name: "per-epoch", model: model)
        let ranks = try train(["--parts", "2"], name: "two-ranks", model: model)
        assertSameTraining(perEpoch, precomputed, "precomputed vs per-epoch aggregation")
        assertSameTraining(perEpoch, ranks, "one rank precomputed vs two ranks exchanging layer 0")
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: scratch.appendingPathComponent("default.json")))
        let quantization = try XCTUnwrap(((config as? [String: Any])?["config"] as? [String: Any])?["quantization"] as? [String: Any])
        XCTAssertEqual(quantization["precompute_first_layer"] as? Bool, true, "the report says which was used: \(quantization)")
    }

    /// The pipelined methods aggregate layer 0 once by default when that is exact (no input dropout), so their first
    /// layer is never stale; PipeGCN smooths by default, PipeQS does not. The report says what was used.
    func testPipelinedDefaultsForLayerZeroAndSmoothing() throws {
        func used(_ options: [String], _ name: String) throws -> (precompute: Bool?, smoothing: Double?) {
            let model = ["--model", "gcn", "--layers", "2", "--hidden", "16", "--dropout", "0.5", "--epochs", "2",
                         "--seed", "3", "--threads", "1", "--quiet"]
            _ = try train(["--parts", "2"] + options, name: name, model: model)
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: scratch.appendingPathComponent("\(name).json")))
            let config = try XCTUnwrap((json as? [String: Any])?["config"] as? [String: Any])
            return ((config["quantization"] as? [String: Any])?["precompute_first_layer"] as? Bool,
                    (config["pipeline"] as? [String: Any])?["smoothing"] as? Double)
        }
        let pipegcn = try used(["--method", "pipegcn"], "pipegcn-defaults")
        XCTAssertEqual(pipegcn.precompute, true)
        XCTAssertEqual(pipegcn.smoothing, 0.95)
        let pipeqs = try used(["--method", "pipeqs"], "pipeqs-defaults")
        XCTAssertEqual(pipeqs.precompute, true)
        XCTAssertEqual(pipeqs.smoothing, 0)
        XCTAssertEqual(try used(["--method", "pipeqs", "--input-dropout", "0.2"], "pipeqs-input-dropout").precompute, false,
                       "with input dropout the aggregate would not be exact")
        XCTAssertEqual(try used(["--method", "vanilla"], "vanilla-defaults").precompute, false)
        let pinned = try used(["--method", "pipegcn", "--no-precompute-layer0", "--smoothing", "0"], "pipegcn-pinned")
        XCTAssertEqual(pinned.precompute, false)
        XCTAssertEqual(pinned.smoothing, 0)
    }

    func testCoraOnFourMetisPartsOverMPIMatchesOneProcess() throws {
        let cora = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/datasets/cora")
        guard FileManager.default.fileExists(atPath: cora.path) else { throw XCTSkip("no ../shared/datasets/cora") }
        let model = ["--model", "gcn", "--hidden", "16", "--dropout", "0.5", "--input-dropout", "0.5", "--norm", "none",
                     "--normalize-features", "--weight-decay", "5e-4", "--epochs", "30", "--threads", "1", "--quiet"]
        let reference = try train([], name: "cora-single", dataset: cora.path, model: model)
        let local = try train(["--parts", "4"], name: "cora-local", dataset: cora.path, model: model)
        assertSameTraining(reference, local, "cora, 4 ranks as threads")
        let mpi = try train([], name: "cora-mpi", ranks: 4, dataset: cora.path, model: model)
        assertSameTraining(reference, mpi, "cora, 4 MPI ranks")
    }

    /// PipeGCN consumes exactly the previous epoch's halo, whatever the timing, so MPI ranks train the model ranks
    /// as threads train. PipeQS's decisions depend on timing; over MPI it must train, with no block older than its
    /// cap. GCN and SAGE, two and four ranks.
    func testPipelinedMethodsOverMPI() throws {
        _ = try mpirun()
        let cap = 2
        for kind in ["gcn", "sage"] {
            var model = Self.model
            model[1] = kind
            for ranks in [2, 4] {
                let label = "\(kind), \(ranks) ranks"
                let local = try train(["--parts", String(ranks), "--method", "pipegcn"], name: "pipegcn-local", model: model)
                let mpi = try train(["--method", "pipegcn"], name: "pipegcn-mpi", ranks: ranks, model: model)
                assertSameTraining(local, mpi, "pipegcn \(label)")
                let pipeqs = try train(["--method", "pipeqs", "--max-staleness", String(cap)], name: "pipeqs-mpi",
                                       ranks: ranks, model: model)
                XCTAssertTrue(pipeqs.epochs.allSatisfy { $0.loss.isFinite }, "pipeqs \(label)")
                XCTAssertGreaterThan(pipeqs.best_val_accuracy ?? 0, 0.6, "pipeqs \(label) learns")
                let records = try JSONDecoder().decode(
                    PipelineReport.self, from: Data(contentsOf: scratch.appendingPathComponent("pipeqs-mpi.json")))
                let sites = records.epochs.compactMap(\.pipeline).flatMap { $0 }
                XCTAssertFalse(sites.isEmpty, "pipeqs \(label) reports its pipeline")
                for site in sites {
                    XCTAssertEqual(site.block_ages.count, cap + 2)
                    XCTAssertEqual(site.block_ages.last, 0, "pipeqs \(label): a block older than the cap was used")
                }
            }
        }
    }

    func testRanksLoadTheirOwnPartsWrittenByPartition() throws {
        let parts = scratch.appendingPathComponent("parts")
        let partition = try run(try halo(), ["partition", "--dataset", Self.dataset, "--parts", "3", "--out", parts.path],
                                timeout: 120)
        XCTAssertEqual(partition.status, 0, "\(partition)")
        XCTAssertTrue(partition.stdout.contains("edge cut"), partition.stdout)
        let reference = try train([], name: "single")
        assertSameTraining(reference, try train(["--partitions", parts.path], name: "local-parts"), "local, parts from disk")
        _ = try mpirun()
        assertSameTraining(reference, try train(["--partitions", parts.path], name: "mpi-parts", ranks: 3), "MPI, parts from disk")
    }

    /// Damages one file of part 1 so that rank 1 fails while loading.
    private func partsWithBrokenRankOne() throws -> URL {
        let parts = scratch.appendingPathComponent("broken")
        let partition = try run(try halo(), ["partition", "--dataset", Self.dataset, "--parts", "3", "--out", parts.path],
                                timeout: 120)
        XCTAssertEqual(partition.status, 0, "\(partition)")
        let partOne = parts.appendingPathComponent("part-1")
        let files = try FileManager.default.contentsOfDirectory(atPath: partOne.path).filter { !$0.hasSuffix(".json") }.sorted()
        let victim = partOne.appendingPathComponent(try XCTUnwrap(files.first))
        var bytes = try Data(contentsOf: victim)
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: victim)
        return parts
    }

    func testAFailingRankEndsTheInProcessJobAndIsNamed() throws {
        let parts = try partsWithBrokenRankOne()
        let outcome = try run(try halo(), ["train", "--partitions", parts.path, "--epochs", "5", "--quiet"], timeout: 60)
        XCTAssertFalse(outcome.timedOut, "\(outcome)")
        XCTAssertNotEqual(outcome.status, 0, "\(outcome)")
        XCTAssertTrue(outcome.stderr.contains("rank 1"), "\(outcome)")
        XCTAssertTrue(outcome.stderr.contains("part-1"), "the message names the damaged file\n\(outcome)")
    }

    func testAFailingRankEndsTheMPIJobAndIsNamed() throws {
        let parts = try partsWithBrokenRankOne()
        let outcome = try run(try mpirun(), launcherArguments(ranks: 3) + [try halo().path, "train", "--transport", "mpi",
                                                                            "--partitions", parts.path, "--epochs", "5"],
                              timeout: 60)
        XCTAssertFalse(outcome.timedOut, "\(outcome)")
        XCTAssertNotEqual(outcome.status, 0, "\(outcome)")
        XCTAssertLessThan(outcome.seconds, 30, "\(outcome)")
        XCTAssertTrue((outcome.stderr + outcome.stdout).contains("rank 1 failed"), "\(outcome)")
    }

    func testMPITransportWithoutLauncherSaysHowToLaunch() throws {
        let outcome = try run(try halo(), ["train", "--transport", "mpi", "--epochs", "1"], timeout: 30)
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertTrue(outcome.stderr.contains("mpirun"), "\(outcome)")
    }
}
