import HaloGraph
import HaloPartition
import XCTest

/// The fuzzer's validity oracle must pass what the project's writers produce and catch what the readers once let
/// through; otherwise "accepted as valid" in a fuzz run would mean nothing.
final class FuzzValidityTests: XCTestCase {
    private func parts() throws -> (Dataset, [Part]) {
        let dataset = try FuzzCorpus.synthetic(seed: 1)
        let partitioning = try Partitioner.partition(graph: dataset.graph, parts: 3, method: .metis, seed: 1)
        return (dataset, Part.build(dataset: dataset, partitioning: partitioning))
    }

    func testWhatTheWritersProduceIsValid() throws {
        let (dataset, parts) = try parts()
        XCTAssertNil(FuzzValidity.problem(in: dataset))
        XCTAssertNil(FuzzValidity.problem(in: try FuzzCorpus.multiLabel(seed: 3)))
        XCTAssertNil(FuzzValidity.problem(in: parts))
    }

    func testDatasetProblems() throws {
        let dataset = try FuzzCorpus.synthetic(seed: 1)
        var overlapping = dataset
        let v = try XCTUnwrap(dataset.split.train.firstIndex(of: true))
        overlapping.split.test[v] = true
        XCTAssertNotNil(FuzzValidity.problem(in: overlapping))

        var unlabelled = dataset
        guard case .singleLabel(var classes, let count) = dataset.labels else { return XCTFail("single-label expected") }
        classes[v] = -1
        unlabelled.labels = .singleLabel(classes: classes, classCount: count)
        XCTAssertNotNil(FuzzValidity.problem(in: unlabelled))
    }

    func testPartProblems() throws {
        let (_, parts) = try parts()
        // An out-degree one off: in range, and above the part's own stored edges.
        var degrees = parts
        degrees[1].degrees.outDegrees[0] += 1
        XCTAssertNotNil(FuzzValidity.problem(in: degrees))

        // Two rows exchanged between the send lists to two peers.
        var exchanged = parts
        let toOne = parts[0].sendLists[1], toTwo = parts[0].sendLists[2]
        let a = try XCTUnwrap(toOne.first { !toTwo.contains($0) }), b = try XCTUnwrap(toTwo.first { !toOne.contains($0) })
        exchanged[0].sendLists[1] = toOne.map { $0 == a ? b : $0 }
        exchanged[0].sendLists[2] = toTwo.map { $0 == b ? a : $0 }
        XCTAssertNotNil(FuzzValidity.problem(in: exchanged))

        // A node owned twice.
        var owned = parts
        owned[2].innerGlobalIDs[0] = parts[0].innerGlobalIDs[0]
        XCTAssertNotNil(FuzzValidity.problem(in: owned))

        // A masked node without a label.
        var unlabelled = parts
        let i = try XCTUnwrap(parts[1].split.train.firstIndex(of: true))
        guard case .singleLabel(var classes, let count) = parts[1].labels else { return XCTFail("single-label expected") }
        classes[i] = -1
        unlabelled[1].labels = .singleLabel(classes: classes, classCount: count)
        XCTAssertNotNil(FuzzValidity.problem(in: unlabelled))
    }
}
