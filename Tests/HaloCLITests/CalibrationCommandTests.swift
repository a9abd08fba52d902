import Foundation
import XCTest

/// `halo calibrate` and `halo train`'s host calibration options, run as a user would, each test with a cache
/// folder of its own (`XDG_CACHE_HOME`).
final class CalibrationCommandTests: CommandTestCase {
    static let dataset = "synthetic:nodes=400,classes=3,features=8,degree=6,seed=3"

    private var cacheHome: String { scratch.appendingPathComponent("cache").path }
    private var cacheFolder: String { cacheHome + "/halo" }

    private func halo(_ arguments: [String]) throws -> Outcome {
        let outcome = try run(try halo(), arguments, timeout: 180, environment: ["XDG_CACHE_HOME": cacheHome])
        XCTAssertFalse(outcome.timedOut, "\(outcome)")
        return outcome
    }

    /// `halo train` on the small dataset; the report's JSON object.
    private func train(_ extra: [String], name: String) throws -> (Outcome, [String: Any]) {
        let json = scratch.appendingPathComponent("\(name).json")
        let outcome = try halo(["train", "--dataset", Self.dataset, "--epochs", "2", "--threads", "1", "--quiet",
                                "--json-out", json.path] + extra)
        XCTAssertEqual(outcome.status, 0, "\(name): \(outcome)")
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        return (outcome, report)
    }

    private func calibrationFiles() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: cacheFolder)) ?? []).filter { $0.hasPrefix("calibration-") }
    }

    func testCalibrateMeasuresCachesAndPrints() throws {
        let json = scratch.appendingPathComponent("calibration.json")
        let outcome = try halo(["calibrate", "--threads", "1", "--json-out", json.path])
        XCTAssertEqual(outcome.status, 0, "\(outcome)")
        let files = calibrationFiles()
        XCTAssertEqual(files.count, 1, "\(files)")
        XCTAssertTrue(outcome.stdout.contains("cached in \(cacheFolder)/\(files[0])"), "\(outcome)")
        for line in ["host: ", "GEMM X·W", "CSR aggregation", "lookup X·W", "listing G"] {
            XCTAssertTrue(outcome.stdout.contains(line), "missing \(line)\n\(outcome)")
        }
        let result = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        let calibration = try XCTUnwrap(result["calibration"] as? [String: Any])
        XCTAssertEqual((calibration["key"] as? [String: Any])?["threads"] as? Int, 1)
        XCTAssertGreaterThan((calibration["rates"] as? [String: Any])?["gemm_forward_seconds_per_flop"] as? Double ?? 0, 0)

        // A later training run with the same threads reads it; --recalibrate measures again; off uses none.
        let (_, cached) = try train([], name: "cached")
        XCTAssertEqual((cached["calibration"] as? [String: Any])?["origin"] as? String, "cached")
        XCTAssertEqual((cached["calibration"] as? [String: Any])?["cache_file"] as? String, "\(cacheFolder)/\(files[0])")
        XCTAssertEqual((cached["first_layer_plan"] as? [String: Any])?["basis"] as? String, "calibrated")
        let (_, remeasured) = try train(["--recalibrate"], name: "recalibrated")
        XCTAssertEqual((remeasured["calibration"] as? [String: Any])?["origin"] as? String, "measured")
        let (_, off) = try train(["--calibration", "off"], name: "off")
        XCTAssertNil(off["calibration"])
        XCTAssertEqual((off["first_layer_plan"] as? [String: Any])?["basis"] as? String, "constants")
        XCTAssertEqual(calibrationFiles().count, 1)
    }

    func testCorruptCacheIsReportedAndMeasuredAgain() throws {
        let (_, first) = try train([], name: "first")
        XCTAssertEqual((first["calibration"] as? [String: Any])?["origin"] as? String, "measured")
        let file = try XCTUnwrap((first["calibration"] as? [String: Any])?["cache_file"] as? String)
        try Data("{\"rates\": 1".utf8).write(to: URL(fileURLWithPath: file))
        let (outcome, second) = try train([], name: "second")
        XCTAssertTrue(outcome.stderr.contains("ignoring the host calibration cache: \(file): not a calibration file"), "\(outcome)")
        XCTAssertEqual((second["calibration"] as? [String: Any])?["origin"] as? String, "measured")
        let (_, third) = try train([], name: "third")
        XCTAssertEqual((third["calibration"] as? [String: Any])?["origin"] as? String, "cached", "the file was rewritten")
    }

    /// Under MPI rank 0 calibrates (one cache file) and its rates decide for both ranks; the report records them.
    func testMPIRanksTakeRankZerosCalibration() throws {
        let json = scratch.appendingPathComponent("mpi.json")
        let outcome = try run(try mpirun(), launcherArguments(ranks: 2) + [
            try halo().path, "train", "--transport", "mpi", "--dataset", Self.dataset, "--epochs", "2", "--threads", "1",
            "--quiet", "--json-out", json.path], timeout: 300, environment: ["XDG_CACHE_HOME": cacheHome])
        XCTAssertEqual(outcome.status, 0, "\(outcome)")
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        XCTAssertEqual((report["calibration"] as? [String: Any])?["origin"] as? String, "measured")
        XCTAssertEqual((report["first_layer_plan"] as? [String: Any])?["basis"] as? String, "calibrated")
        XCTAssertEqual(calibrationFiles().count, 1)
    }

    func testRecalibrateWithCalibrationOffIsRefused() throws {
        let outcome = try halo(["train", "--dataset", Self.dataset, "--calibration", "off", "--recalibrate"])
        XCTAssertNotEqual(outcome.status, 0)
        XCTAssertTrue(outcome.stderr.contains("--recalibrate measures the rates that --calibration off does not use"), "\(outcome)")
        XCTAssertEqual(calibrationFiles(), [])
    }
}
