import Foundation
import HaloGraph
import HaloImportTesting
import HaloTensor
import XCTest

@testable import HaloImport

final class NPZImporterTests: ImportTestCase {
    private func importFile(_ members: [String: Data], method: ZipWriter.Method = .deflated, name: String = "g.npz",
                            _ configure: (inout NPZImporter.Options) -> Void = { _ in }) throws -> ImportedDataset {
        let url = scratch.appendingPathComponent(name)
        try NPZFixture.archive(members, method: method).write(to: url)
        var options = NPZImporter.Options()
        configure(&options)
        return try NPZImporter.importDataset(file: url, options: options)
    }

    func testStoredAndDeflatedFilesImportToTheDatasetTheyWereWrittenFrom() throws {
        let synthetic = try syntheticDataset()
        let tiny = tinyDataset()
        for method in [ZipWriter.Method.stored, .deflated] {
            let dense = try importFile(NPZFixture.members(of: synthetic, masks: true), method: method) { $0.name = synthetic.name }
            XCTAssertEqual(dense.dataset, synthetic, "\(method)")
            XCTAssertEqual(dense.splitDescription, "the masks of g.npz")
            let sparse = try importFile(NPZFixture.members(of: tiny, masks: true), method: method) { $0.direction = .asStored; $0.name = "tiny" }
            XCTAssertEqual(sparse.dataset, tiny, "\(method)")
        }
    }

    func testMultiLabelTargetsDenseAndCSR() throws {
        let targets: [UInt8] = [1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0]
        let multi = tinyDataset(labels: .multiLabel(targets: targets, classCount: 3))
        XCTAssertEqual(try importFile(NPZFixture.members(of: multi, masks: true)) { $0.direction = .asStored; $0.name = "tiny" }.dataset, multi)

        var csr = NPZFixture.members(of: multi, masks: true)
        csr["labels"] = nil
        var pointers: [Int32] = [0], columns: [Int32] = []
        for v in 0..<6 {
            for c in 0..<3 where targets[v * 3 + c] == 1 { columns.append(Int32(c)) }
            pointers.append(Int32(columns.count))
        }
        csr["labels_indptr"] = NPYEncoder.int32(pointers)
        csr["labels_indices"] = NPYEncoder.int32(columns)
        csr["labels_shape"] = NPYEncoder.int64([6, 3])
        XCTAssertEqual(try importFile(csr) { $0.direction = .asStored; $0.name = "tiny" }.dataset, multi)
    }

    func testUnsortedRepeatedCSREntriesAndZeroWeightsAreNormalised() throws {
        var members = NPZFixture.members(of: tinyDataset(), masks: true)
        // Node 0's features listed out of order with column 2 split in two halves; an explicit zero for node 1.
        members["attr_indptr"] = NPYEncoder.int64([0, 3, 5, 6, 6, 8, 9])
        members["attr_indices"] = NPYEncoder.int32([2, 0, 2, 1, 3, 3, 1, 0, 2])
        members["attr_data"] = NPYEncoder.float64([0.25, 1, 0.25, 1, 0, -2, 3, 1, 1])
        // An edge of weight 0 is no edge.
        members["adj_data"] = NPYEncoder.float32([1, 1, 1, 1, 1, 1, 0])
        let imported = try importFile(members) { $0.direction = .asStored }.dataset
        XCTAssertEqual(imported.features, tinyDataset().features)
        XCTAssertEqual(imported.graph.edgeCount, 6)
    }

    func testFloatLabelsWithNaNAreUnlabelled() throws {
        var members = NPZFixture.members(of: tinyDataset(), masks: true)
        members["labels"] = NPYEncoder.float32([0, 1, 2, 0, 1, .nan])
        XCTAssertEqual(try importFile(members) { $0.direction = .asStored; $0.name = "tiny" }.dataset, tinyDataset())
    }

    func testWithoutMasksASeededSplitIsGenerated() throws {
        let members = NPZFixture.members(of: try syntheticDataset(), masks: false)
        let a = try importFile(members) { $0.seed = 4 }, b = try importFile(members) { $0.seed = 4 }
        XCTAssertEqual(a.dataset.split, b.dataset.split)
        XCTAssertEqual(a.dataset.split.trainCount + a.dataset.split.validationCount + a.dataset.split.testCount, 300)
        XCTAssertTrue(a.notes.contains { $0.contains("no masks in the file") })
    }

    func testMalformedFilesAreRefusedNamingMemberAndField() throws {
        let good = NPZFixture.members(of: tinyDataset(), masks: true)
        func check(_ kind: ImportErrorKind, _ member: String, _ fragments: String..., line: UInt = #line, edit: (inout [String: Data]) -> Void) {
            var members = good
            edit(&members)
            assertImportError(kind, file: member, fragments: fragments, line: line) { try importFile(members) }
        }
        check(.shapeMismatch, "g.npz/labels.npy", "(5,)", "(6,) class ids") { $0["labels"] = NPYEncoder.int64([0, 1, 2, 0, 1]) }
        check(.shapeMismatch, "g.npz/adj_shape.npy", "[6, 5]", "square") { $0["adj_shape"] = NPYEncoder.int64([6, 5]) }
        check(.shapeMismatch, "g.npz/adj_indptr.npy", "(6,)", "(7,)") { $0["adj_indptr"] = NPYEncoder.int32([0, 1, 2, 3, 4, 5]) }
        check(.shapeMismatch, "g.npz/adj_indptr.npy", "pointer 2", "non-decreasing") { $0["adj_indptr"] = NPYEncoder.int32([0, 2, 1, 4, 5, 6, 7]) }
        check(.idOutOfRange, "g.npz/adj_indices.npy", "column index at flat index 1", "9", "0...5") {
            $0["adj_indices"] = NPYEncoder.int32([1, 9, 2, 3, 1, 4, 5])
        }
        check(.badHeader, "g.npz/attr_indices.npy", "magic") { $0["attr_indices"] = Data("garbage that is not an npy".utf8) }
        check(.unsupportedType, "g.npz/labels.npy", "big-endian >i8") {
            $0["labels"] = NPYEncoder.array(descr: ">i8", shape: [6], body: Data(count: 48))
        }
        check(.unsupportedType, "g.npz/attr_data.npy", "<c8") { $0["attr_data"] = NPYEncoder.array(descr: "<c8", shape: [7], body: Data(count: 56)) }
        check(.labelOutOfRange, "g.npz/labels.npy", "label of node 5", "-2") { $0["labels"] = NPYEncoder.int64([0, 1, 2, 0, 1, -2]) }
        check(.labelOutOfRange, "g.npz/labels.npy", "label of node 1", "1.5") { $0["labels"] = NPYEncoder.float64([0, 1.5, 2, 0, 1, .nan]) }
        check(.nonFinite, "g.npz/attr_data.npy", "inf") { $0["attr_data"] = NPYEncoder.float32([1, .infinity, 1, -2, 1, 3, 1]) }
        check(.missingFile, "g.npz/adj_indices.npy", "missing") { $0["adj_indices"] = nil }
        check(.missingFile, "g.npz/attr_matrix.npy", "no attr_data") {
            for key in ["attr_indptr", "attr_indices", "attr_data", "attr_shape"] { $0[key] = nil }
        }
        check(.badSplit, "g.npz/val_mask.npy", "node 1", "also in train_mask") {
            $0["val_mask"] = NPYEncoder.bool([false, true, true, true, false, false])
        }
        check(.badSplit, "g.npz/test_mask.npy", "node 5", "unlabelled") {
            $0["test_mask"] = NPYEncoder.bool([false, false, false, false, true, true])
        }
    }
}
