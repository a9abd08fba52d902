import Foundation
import HaloGraph
import HaloImportTesting
import HaloTensor
import XCTest

@testable import HaloImport

/// OGB's binary layout (raw/data.npz, raw/node-label.npz) against its CSV layout and the dataset both were written from.
final class OGBBinaryLayoutTests: ImportTestCase {
    private func importTree(_ name: String = "ogbn_test", _ configure: (inout OGBImporter.Options) -> Void = { _ in }) throws -> ImportedDataset {
        var options = OGBImporter.Options()
        configure(&options)
        return try OGBImporter.importDataset(directory: scratch.appendingPathComponent(name), options: options)
    }

    func testBinaryTreeImportsExactlyAsTheCSVTreeOfTheSameData() throws {
        let original = try syntheticDataset()
        try OGBFixture.write(original, to: scratch.appendingPathComponent("csv"), gzip: true)
        let csv = try importTree("csv") { $0.name = original.name }
        XCTAssertEqual(csv.dataset, original)
        for method in [ZipWriter.Method.deflated, .stored] {
            let name = "binary-\(method)"
            try OGBBinaryFixture.write(original, to: scratch.appendingPathComponent(name), method: method)
            let binary = try importTree(name) { $0.name = original.name }
            XCTAssertEqual(binary.dataset, csv.dataset, "\(method)")
            XCTAssertEqual(binary.dataset, original, "\(method)")
            XCTAssertEqual(binary.splitDescription, csv.splitDescription)
            XCTAssertEqual(binary.notes, csv.notes)
            XCTAssertTrue(binary.source.contains("binary layout"), binary.source)
            // What the writer makes of it reads back the same.
            let out = scratch.appendingPathComponent("out-\(name)")
            try DatasetFormat.write(binary.dataset, to: out, splitDescription: binary.splitDescription)
            XCTAssertEqual(try DatasetFormat.read(directory: out), original)
        }
    }

    func testDirectedTreeWithNaNLabelsKeepsOrSymmetrisesItsEdgesAsTheCSVLayoutDoes() throws {
        let tiny = tinyDataset(sparse: false)
        try OGBBinaryFixture.write(tiny, to: scratch.appendingPathComponent("ogbn_test"))
        try OGBFixture.write(tiny, to: scratch.appendingPathComponent("csv"), gzip: false)
        let asStored = try importTree { $0.direction = .asStored; $0.name = "tiny" }
        XCTAssertEqual(asStored.dataset, tiny, "NaN reads as unlabelled (node 5)")
        XCTAssertEqual(asStored.dataset, try importTree("csv") { $0.direction = .asStored; $0.name = "tiny" }.dataset)
        let undirected = try importTree { $0.name = "tiny" }
        XCTAssertTrue(undirected.dataset.graph.isSymmetric)
        XCTAssertEqual(undirected.dataset.graph.edgeCount, 10)
        XCTAssertEqual(undirected.dataset, try importTree("csv") { $0.name = "tiny" }.dataset)
        XCTAssertEqual(undirected.notes, try importTree("csv").notes)
    }

    func testSelfLoopsInEdgeIndexAreDroppedAndCounted() throws {
        let tiny = tinyDataset(sparse: false)
        var data = OGBBinaryFixture.dataMembers(of: tiny)
        var (sources, destinations) = OGBFixture.storedEdges(of: tiny)
        sources.append(3)
        destinations.append(3)
        data["edge_index"] = NPYEncoder.int64((sources + destinations).map { Int64($0) }, shape: [2, sources.count])
        data["num_edges_list"] = NPYEncoder.int64([8])
        try write(data: data, labels: OGBBinaryFixture.labelMembers(of: tiny), split: OGBFixture.splitFiles(of: tiny, scheme: "time"))
        let imported = try importTree { $0.direction = .asStored }
        XCTAssertEqual(imported.dataset.graph.edgeCount, 7)
        XCTAssertTrue(imported.notes[0].contains("8 edges read, 1 self loop dropped"), imported.notes[0])
    }

    func testFortranOrderEdgeIndexReadsTheSame() throws {
        let original = try syntheticDataset()
        var data = OGBBinaryFixture.dataMembers(of: original)
        let (sources, destinations) = OGBFixture.storedEdges(of: original)
        // Column by column: each edge's source, then its destination.
        let interleaved = zip(sources, destinations).flatMap { [Int64($0), Int64($1)] }
        data["edge_index"] = NPYEncoder.array(descr: "<i8", shape: [2, sources.count], body: interleaved.withUnsafeBytes { Data($0) }, fortranOrder: true)
        try write(data: data, labels: OGBBinaryFixture.labelMembers(of: original), split: OGBFixture.splitFiles(of: original, scheme: "time"))
        XCTAssertEqual(try importTree { $0.name = original.name }.dataset, original)
        // The first bad id in edge order is reported, whichever row it is in.
        var bad = interleaved
        bad[2 * 7 + 1] = 300
        bad[2 * 9] = -4
        data["edge_index"] = NPYEncoder.array(descr: "<i8", shape: [2, sources.count], body: bad.withUnsafeBytes { Data($0) }, fortranOrder: true)
        try write(data: data, labels: OGBBinaryFixture.labelMembers(of: original), split: OGBFixture.splitFiles(of: original, scheme: "time"))
        assertImportError(.idOutOfRange, file: "ogbn_test/raw/data.npz/edge_index.npy", "edge 7", "\(sources[7]), 300)", "0..<300") { try importTree() }
    }

    func testFloat16FeaturesAreWidenedExactly() throws {
        let tiny = tinyDataset(sparse: false)
        try OGBBinaryFixture.write(tiny, to: scratch.appendingPathComponent("ogbn_test"), features: .float16)
        XCTAssertEqual(try importTree { $0.direction = .asStored; $0.name = "tiny" }.dataset, tiny)
    }

    func testHalfPrecisionBitsWidenToTheSameValue() {
        XCTAssertEqual(NPYArray.float(halfBits: 0x3C00), 1)
        XCTAssertEqual(NPYArray.float(halfBits: 0xC000), -2)
        XCTAssertEqual(NPYArray.float(halfBits: 0x3555), 0.333251953125)
        XCTAssertEqual(NPYArray.float(halfBits: 0x7BFF), 65504, "largest half")
        XCTAssertEqual(NPYArray.float(halfBits: 0x0400), 0x1p-14, "smallest normal")
        XCTAssertEqual(NPYArray.float(halfBits: 0x0001), 0x1p-24, "smallest subnormal")
        XCTAssertEqual(NPYArray.float(halfBits: 0x03FF), 1023 * 0x1p-24, "largest subnormal")
        XCTAssertEqual(NPYArray.float(halfBits: 0x8000).sign, .minus)
        XCTAssertEqual(NPYArray.float(halfBits: 0x8000), 0)
        XCTAssertEqual(NPYArray.float(halfBits: 0xFC00), -.infinity)
        XCTAssertTrue(NPYArray.float(halfBits: 0x7E00).isNaN)
    }

    func testMultiLabelTargetsAndGeneratedSplitMatchTheCSVLayout() throws {
        let targets: [UInt8] = [1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0]
        let multi = tinyDataset(labels: .multiLabel(targets: targets, classCount: 3), sparse: false)
        try OGBBinaryFixture.write(multi, to: scratch.appendingPathComponent("ogbn_test"))
        XCTAssertEqual(try importTree { $0.direction = .asStored; $0.name = "tiny" }.dataset, multi)

        let original = try syntheticDataset()
        try OGBBinaryFixture.write(original, to: scratch.appendingPathComponent("nosplit-binary"), splitScheme: nil)
        try OGBFixture.write(original, to: scratch.appendingPathComponent("nosplit-csv"), gzip: false, splitScheme: nil)
        let binary = try importTree("nosplit-binary") { $0.seed = 9 }, csv = try importTree("nosplit-csv") { $0.seed = 9 }
        XCTAssertEqual(binary.dataset.split, csv.dataset.split)
        XCTAssertEqual(binary.splitDescription, csv.splitDescription)
    }

    func testMalformedBinaryTreesAreRefusedNamingFileMemberAndField() throws {
        let tiny = tinyDataset(sparse: false)
        let goodData = OGBBinaryFixture.dataMembers(of: tiny), goodLabels = OGBBinaryFixture.labelMembers(of: tiny)
        let split = OGBFixture.splitFiles(of: tiny, scheme: "time")
        let (sources, destinations) = OGBFixture.storedEdges(of: tiny)
        func check(_ kind: ImportErrorKind, _ file: String, _ fragments: String..., line: UInt = #line,
                   data editData: (inout [String: Data]) -> Void = { _ in }, labels editLabels: (inout [String: Data]) -> Void = { _ in }) throws {
            var data = goodData, labels = goodLabels
            editData(&data)
            editLabels(&labels)
            try write(data: data, labels: labels, split: split)
            do {
                _ = try importTree()
                XCTFail("expected \(kind) about \(file)", line: line)
            } catch let error as ImportError {
                XCTAssertEqual(error.kind, kind, "\(error)", line: line)
                XCTAssertEqual(error.file, "ogbn_test/\(file)", "\(error)", line: line)
                for fragment in fragments { XCTAssertTrue(error.description.contains(fragment), "\"\(error)\" lacks \"\(fragment)\"", line: line) }
            }
        }
        try check(.missingFile, "raw/data.npz/edge_index.npy", "missing", "OGB's raw/data.npz") { $0["edge_index"] = nil }
        try check(.missingFile, "raw/data.npz/node_feat.npy", "missing") { $0["node_feat"] = nil }
        try check(.missingFile, "raw/data.npz/num_nodes_list.npy", "missing") { $0["num_nodes_list"] = nil }
        try check(.missingFile, "raw/node-label.npz/node_label.npy", "missing", "OGB's raw/node-label.npz") { _ in } labels: { $0["node_label"] = nil }
        try check(.shapeMismatch, "raw/data.npz/edge_index.npy", "(3, 4)", "(2, edges)") {
            $0["edge_index"] = NPYEncoder.int64([Int64](repeating: 0, count: 12), shape: [3, 4])
        }
        try check(.unsupportedType, "raw/data.npz/edge_index.npy", "f4", "integer node ids") {
            $0["edge_index"] = NPYEncoder.float32((sources + destinations).map { Float($0) }, shape: [2, sources.count])
        }
        try check(.idOutOfRange, "raw/data.npz/edge_index.npy", "edge 2", "(1, 6)", "0..<6 (num_nodes_list)") {
            var ids = (sources + destinations).map { Int64($0) }
            ids[sources.count + 2] = 6
            ids[2] = 1
            $0["edge_index"] = NPYEncoder.int64(ids, shape: [2, sources.count])
        }
        try check(.idOutOfRange, "raw/data.npz/edge_index.npy", "edge 0", "(-1, 1)") {
            var ids = (sources + destinations).map { Int64($0) }
            ids[0] = -1
            $0["edge_index"] = NPYEncoder.int64(ids, shape: [2, sources.count])
        }
        try check(.idOutOfRange, "raw/data.npz/edge_index.npy", "edge 1", "(9, \(destinations[1]))") {
            // Two bad sources: the error names the first, with its destination.
            var ids = (sources + destinations).map { Int64($0) }
            ids[1] = 9
            ids[3] = 8
            $0["edge_index"] = NPYEncoder.int64(ids, shape: [2, sources.count])
        }
        try check(.rowCount, "raw/data.npz/edge_index.npy", "number of edges", "9, as num_edges_list says") { $0["num_edges_list"] = NPYEncoder.int64([9]) }
        try check(.shapeMismatch, "raw/data.npz/node_feat.npy", "(6, 4)", "(7, features)", "as num_nodes_list says") {
            $0["num_nodes_list"] = NPYEncoder.int64([7])
        }
        try check(.shapeMismatch, "raw/data.npz/num_nodes_list.npy", "(2,)", "(1,)") { $0["num_nodes_list"] = NPYEncoder.int64([6, 6]) }
        try check(.idOutOfRange, "raw/data.npz/num_nodes_list.npy", "node count at flat index 0", "1...2147483647") { $0["num_nodes_list"] = NPYEncoder.int64([0]) }
        try check(.unsupportedType, "raw/data.npz/node_feat.npy", "i8", "floats") {
            $0["node_feat"] = NPYEncoder.int64([Int64](repeating: 1, count: 24), shape: [6, 4])
        }
        try check(.nonFinite, "raw/data.npz/node_feat.npy", "feature at flat index 5", "inf") {
            var values = tiny.features.denseMatrix().storage
            values[5] = .infinity
            $0["node_feat"] = NPYEncoder.float32(values, shape: [6, 4])
        }
        try check(.shapeMismatch, "raw/node-label.npz/node_label.npy", "(5, 1)", "(6, 1) class ids") { _ in } labels: {
            $0["node_label"] = NPYEncoder.float32([0, 1, 2, 0, 1], shape: [5, 1])
        }
        try check(.labelOutOfRange, "raw/node-label.npz/node_label.npy", "node 1", "1.5", "NaN for an unlabelled node") { _ in } labels: {
            $0["node_label"] = NPYEncoder.float32([0, 1.5, 2, 0, 1, .nan], shape: [6, 1])
        }
        try check(.labelOutOfRange, "raw/node-label.npz/node_label.npy", "node 2, task 1", "0 or 1") { _ in } labels: {
            $0["node_label"] = NPYEncoder.float32([1, 0, 0, 1, 0, 2, 1, 1, 0, 0, 1, 1], shape: [6, 2])
        }

        // A split naming an unlabelled node, a label archive that is missing, a data archive that is not a zip.
        var withBadSplit = split
        withBadSplit["split/time/test.csv"] = "5\n"
        try write(data: goodData, labels: goodLabels, split: withBadSplit)
        assertImportError(.badSplit, file: "ogbn_test/split/time/test.csv", "node 5, which is unlabelled") { try importTree() }
        try FileManager.default.removeItem(at: scratch.appendingPathComponent("ogbn_test/raw/node-label.npz"))
        assertImportError(.missingFile, file: "ogbn_test/raw/node-label.npz", "missing") { try importTree() }
        try Data("not a zip archive".utf8).write(to: scratch.appendingPathComponent("ogbn_test/raw/data.npz"))
        assertImportError(.badArchive, file: "ogbn_test/raw/data.npz", "end of central directory") { try importTree() }
    }

    private func write(data: [String: Data], labels: [String: Data], split: [String: String]) throws {
        let tree = scratch.appendingPathComponent("ogbn_test")
        try? FileManager.default.removeItem(at: tree)
        try OGBBinaryFixture.write(OGBBinaryFixture.files(data: data, labels: labels, split: split), to: tree)
    }
}
