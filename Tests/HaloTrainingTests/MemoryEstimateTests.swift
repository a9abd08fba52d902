import HaloNN
import HaloTraining
import XCTest

final class MemoryEstimateTests: XCTestCase {
    private func model(_ kind: ModelConfiguration.Kind = .gcn, layers: Int, hidden: Int) -> ModelConfiguration {
        ModelConfiguration(kind: kind, layers: layers, hiddenWidth: hidden, dropout: 0.5)
    }

    /// The terms, counted by hand: 3 layers 10 → 4 → 4 → 2 on 100 rows.
    func testCountsParametersActivationsAndFeatures() {
        let estimate = MemoryEstimate(model: model(layers: 3, hidden: 4), rows: 100, inputWidth: 10, classes: 2,
                                      featureBytes: 4000)
        // Weights 10·4 + 4·4 + 4·2 = 64 floats, four copies each.
        XCTAssertEqual(estimate.parameterBytes, 64 * 4 * 4)
        // 100 rows × (4 + 4 + 2) outputs, four matrices each.
        XCTAssertEqual(estimate.activationBytes, 100 * 10 * 4 * 4)
        XCTAssertEqual(estimate.featureBytes, 4000)
        XCTAssertEqual(estimate.totalBytes, 1024 + 16000 + 4000)
        XCTAssertTrue(estimate.largestWeight == (10, 4))
        XCTAssertEqual(estimate.largestWeightMeaning, "feature width × hidden")
    }

    func testSageReplicasAndPrecomputedAggregation() {
        let gcn = MemoryEstimate(model: model(layers: 2, hidden: 8), rows: 50, inputWidth: 6, classes: 3, featureBytes: 0)
        let sage = MemoryEstimate(model: model(.sage, layers: 2, hidden: 8), rows: 50, inputWidth: 6, classes: 3,
                                  featureBytes: 0, replicas: 4, precomputedFirstLayer: true)
        XCTAssertEqual(sage.parameterBytes, gcn.parameterBytes * 2 * 4, "two weights per SAGE layer, one model per rank")
        XCTAssertEqual(sage.activationBytes, gcn.activationBytes + 50 * 6 * 4, "plus a dense copy of the first aggregate")
    }

    /// The sizes of issue 12: a declared class count of 2^31 − 1 needs terabytes and is refused with the numbers.
    func testRefusalSaysWhatIsNeededWhatThereIsAndWhatToChange() {
        let estimate = MemoryEstimate(model: model(layers: 2, hidden: 256), rows: 2708, inputWidth: 1433,
                                      classes: 2_147_483_647, featureBytes: 100_000)
        XCTAssertGreaterThan(estimate.parameterBytes, 8e12)
        XCTAssertEqual(estimate.largestWeightMeaning, "hidden × classes")
        let gib = 1_073_741_824.0
        XCTAssertThrowsError(try estimate.check(availableBytes: 16 * gib, hint: "lower --hidden")) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.hasPrefix("this run needs about "), message)
            XCTAssertTrue(message.contains("GiB of memory, this machine has 16.0 GiB"), message)
            XCTAssertTrue(message.contains("largest weight 256 × 2147483647, hidden × classes"), message)
            XCTAssertTrue(message.hasSuffix("; lower --hidden"), message)
        }
        // Cora's real size fits easily.
        let cora = MemoryEstimate(model: model(layers: 2, hidden: 256), rows: 2708, inputWidth: 1433, classes: 7,
                                  featureBytes: 100_000)
        XCTAssertLessThan(cora.totalBytes, 0.1 * gib)
        XCTAssertNoThrow(try cora.check(availableBytes: 16 * gib, hint: ""))
    }

    func testPhysicalMemoryIsKnownHere() throws {
        let bytes = try XCTUnwrap(MemoryEstimate.physicalMemoryBytes)
        XCTAssertGreaterThan(bytes, 256 * 1_048_576)
    }
}
