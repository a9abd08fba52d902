import Foundation
import HaloGraph
import HaloTensor
import XCTest

@testable import HaloImport

/// Bytes handed out a few at a time, so readers meet every buffer boundary.
final class ChunkedByteStream: ByteStream {
    let displayName: String
    private let data: [UInt8]
    private let chunk: Int
    private var offset = 0

    init(_ data: Data, chunk: Int = 7, displayName: String = "test.csv") {
        self.data = Array(data)
        self.chunk = chunk
        self.displayName = displayName
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let count = min(chunk, buffer.count, data.count - offset)
        for k in 0..<count { buffer[k] = data[offset + k] }
        offset += count
        return count
    }
}

/// A fresh folder per test, removed afterwards.
class ImportTestCase: XCTestCase {
    var scratch: URL!

    override func setUpWithError() throws {
        scratch = FileManager.default.temporaryDirectory.appendingPathComponent("halo-import-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: scratch)
    }

    /// Asserts that `body` throws an `ImportError` of `kind` whose file ends with `file` and whose text contains
    /// every one of `fragments`.
    func assertImportError<T>(
        _ kind: ImportErrorKind, file: String, _ fragments: String..., line: UInt = #line, _ body: () throws -> T
    ) {
        assertImportError(kind, file: file, fragments: fragments, line: line, body)
    }

    func assertImportError<T>(
        _ kind: ImportErrorKind, file: String, fragments: [String], line: UInt = #line, _ body: () throws -> T
    ) {
        do {
            _ = try body()
            XCTFail("expected a \(kind) error about \(file)", line: line)
        } catch let error as ImportError {
            XCTAssertEqual(error.kind, kind, "\(error)", line: line)
            XCTAssertTrue(error.file.hasSuffix(file), "error names \(error.file), expected …\(file): \(error)", line: line)
            for fragment in fragments {
                XCTAssertTrue(error.description.contains(fragment), "\"\(error)\" lacks \"\(fragment)\"", line: line)
            }
        } catch {
            XCTFail("expected an ImportError, got \(error)", line: line)
        }
    }

    /// A small synthetic dataset (symmetric graph, dense features, 4 classes, split).
    func syntheticDataset(nodes: Int = 300, seed: UInt64 = 3) throws -> Dataset {
        try SyntheticGraphSpec(parsing: "synthetic:nodes=\(nodes),classes=4,features=6,degree=5,seed=\(seed)").generate()
    }

    /// Six nodes, directed edges with a duplicate and a self loop, sparse features, node 5 unlabelled.
    func tinyDataset(labels: NodeLabels? = nil, sparse: Bool = true) -> Dataset {
        let graph = Graph(nodeCount: 6, sources: [0, 1, 2, 3, 4, 1, 2], destinations: [1, 2, 3, 4, 5, 0, 1])
        let matrix = SparseMatrix(rows: 6, cols: 4, triplets: [(0, 0, 1), (0, 2, 0.5), (1, 1, 1), (2, 3, -2), (4, 0, 1), (4, 1, 3), (5, 2, 1)])
        return Dataset(
            name: "tiny", graph: graph, features: sparse ? .sparse(matrix) : .dense(matrix.dense()),
            labels: labels ?? .singleLabel(classes: [0, 1, 2, 0, 1, -1], classCount: 3),
            split: NodeSplit(train: [true, true, false, false, false, false], validation: [false, false, true, true, false, false],
                             test: [false, false, false, false, true, false]))
    }
}
