import Foundation
import XCTest

/// `halo microbench` names OpenBLAS's kernel family and gives every GEMM shape on one thread and on `--threads`
/// with its fraction of the square rate on the same threads, in its text and in its JSON.
final class MicrobenchCommandTests: CommandTestCase {
    func testGEMMShapesCarryKernelFamilyThreadsAndFractionOfSquare() throws {
        let json = scratch.appendingPathComponent("microbench.json")
        let outcome = try run(try halo(), [
            "microbench", "--dataset", "synthetic:nodes=300,classes=3,features=8,degree=6,seed=3", "--threads", "2",
            "--repeats", "1", "--gemm-rows", "2000", "--gemm-features", "40", "--json-out", json.path], timeout: 300)
        XCTAssertEqual(outcome.status, 0, "\(outcome)")
        XCTAssertTrue(outcome.stdout.contains("OpenBLAS core: "), "\(outcome)")
        XCTAssertTrue(outcome.stdout.contains("GEMM 2000×256×40, 2 threads"), "\(outcome)")
        XCTAssertTrue(outcome.stdout.contains("of square"), "\(outcome)")

        let result = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
        for field in ["blas_core", "blas_core_choice", "blas_config"] {
            XCTAssertFalse((result[field] as? String ?? "").isEmpty, "\(field) missing")
        }
        let gemms = try XCTUnwrap(result["gemm"] as? [[String: Any]])
        // Hidden forward, input gradient, weight gradient, first-layer forward and weight gradient, square; twice.
        XCTAssertEqual(gemms.count, 12)
        XCTAssertEqual(Set(gemms.compactMap { $0["threads"] as? Int }), [1, 2])
        for g in gemms {
            let shape = "\(g["m"] ?? "?")×\(g["n"] ?? "?")×\(g["k"] ?? "?") on \(g["threads"] ?? "?")"
            for field in ["gflops", "median_gflops", "gflops_by_cpu_time", "fraction_of_square",
                          "fraction_of_square_by_cpu_time"] {
                XCTAssertGreaterThan(g[field] as? Double ?? 0, 0, "\(field) of \(shape)")
            }
            XCTAssertNotNil(g["partition"] as? String, shape)
            if g["m"] as? Int == 2048 {
                XCTAssertEqual(g["fraction_of_square"] as? Double, 1, shape)
            }
        }
        // The weight gradient's long inner dimension is what the pool cuts on two threads.
        let weightGradient = gemms.first { $0["m"] as? Int == 40 && $0["k"] as? Int == 2000 && $0["threads"] as? Int == 2 }
        XCTAssertEqual(weightGradient?["partition"] as? String, "inner")
    }
}
