import Foundation
import XCTest

/// A test case that runs the built `halo` as a user would: a scratch folder of its own per test (removed after
/// it), and the executables it needs, skipping the test where one is missing.
class CommandTestCase: XCTestCase {
    /// Emptied and removed after every test.
    var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory
            .appendingPathComponent("halo-\(String(describing: type(of: self)))-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    func halo() throws -> URL {
        guard let halo = haloBinary() else { throw XCTSkip("halo binary not built next to the tests") }
        return halo
    }

    func mpirun() throws -> URL {
        guard let mpirun = Self.findOnPath("mpirun") else { throw XCTSkip("mpirun is not on PATH") }
        return mpirun
    }
}
