import HaloTensor
import XCTest

final class BLASRuntimeTests: XCTestCase {
    func testOverrideDecision() {
        let rec = "SKYLAKEX"
        XCTAssertTrue(BLASRuntime.shouldOverride(environment: [:], recommended: rec))
        XCTAssertTrue(BLASRuntime.shouldOverride(environment: ["OPENBLAS_CORETYPE": "Haswell"], recommended: rec))
        XCTAssertFalse(BLASRuntime.shouldOverride(environment: ["OPENBLAS_CORETYPE": "Cooperlake"], recommended: rec))
        XCTAssertFalse(BLASRuntime.shouldOverride(environment: [:], recommended: nil))
        XCTAssertFalse(BLASRuntime.shouldOverride(
            environment: ["OPENBLAS_CORETYPE": "Haswell", "HALO_KEEP_OPENBLAS_CORETYPE": "1"], recommended: rec))
        XCTAssertFalse(BLASRuntime.shouldOverride(environment: ["HALO_BLAS_RELAUNCHED": "1"], recommended: rec),
                       "a relaunched process must never relaunch again")
    }
}
