import HaloGraph
import XCTest

@testable import HaloImport

final class SplitGeneratorTests: XCTestCase {
    func testStratifiedDisjointSeededAndSkipsUnlabelled() {
        // 3 classes of 100, 40 and 10 nodes, then 20 unlabelled.
        let classes = [Int32](repeating: 0, count: 100) + [Int32](repeating: 1, count: 40) + [Int32](repeating: 2, count: 10)
            + [Int32](repeating: -1, count: 20)
        let labels = NodeLabels.singleLabel(classes: classes, classCount: 3)
        let fractions = SplitFractions(train: 0.6, validation: 0.2, test: 0.2)!
        let split = SplitGenerator.split(labels: labels, fractions: fractions, seed: 7)
        for v in classes.indices {
            let memberships = [split.train[v], split.validation[v], split.test[v]].filter { $0 }.count
            XCTAssertEqual(memberships, classes[v] == -1 ? 0 : 1, "node \(v)")
        }
        for (c, size) in [(Int32(0), 100), (1, 40), (2, 10)] {
            let train = classes.indices.filter { classes[$0] == c && split.train[$0] }.count
            XCTAssertEqual(train, Int((0.6 * Double(size)).rounded()), "class \(c)")
        }
        XCTAssertEqual(SplitGenerator.split(labels: labels, fractions: fractions, seed: 7), split)
        XCTAssertNotEqual(SplitGenerator.split(labels: labels, fractions: fractions, seed: 8), split)
    }

    func testFractionsParseAndRefuseNonsense() {
        XCTAssertEqual(SplitFractions(parsing: "0.5, 0.25,0.25"), SplitFractions(train: 0.5, validation: 0.25, test: 0.25))
        XCTAssertEqual(SplitFractions(parsing: "0.1,0.1,0"), SplitFractions(train: 0.1, validation: 0.1, test: 0))
        for bad in ["0.6,0.2", "0.6,0.3,0.3", "0,0.5,0.5", "a,b,c", "-0.1,0.5,0.5", "0.6,0.2,0.2,0.0"] {
            XCTAssertNil(SplitFractions(parsing: bad), bad)
        }
    }
}
