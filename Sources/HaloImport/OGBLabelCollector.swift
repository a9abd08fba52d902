import HaloGraph

/// Turns OGB node labels, one value at a time in node order, into `NodeLabels`, the same way for both of OGB's
/// layouts (a column of `node-label.csv`, an element of `node-label.npz`'s `node_label`).
///
/// One column: a class per node, NaN, a missing value or -1 meaning unlabelled (ogbn-papers100M labels a few percent
/// of its nodes), the class count being the largest class + 1. Several columns: a 0/1 target per task (multi-label).
struct OGBLabelCollector {
    let columns: Int
    private var classes: [Int32] = []
    private var targets: [UInt8] = []

    init(columns: Int, nodeCount: Int) {
        self.columns = columns
        if columns == 1 { classes.reserveCapacity(nodeCount) } else { targets.reserveCapacity(nodeCount * columns) }
    }

    /// Adds the next value (nil: an empty CSV field); `file` and `field` name it in an error, `field` built only then.
    mutating func append(_ value: Double?, file: String, field: @autoclosure () -> String) throws {
        if columns == 1 {
            guard let value, !value.isNaN, value != -1 else {
                classes.append(-1)
                return
            }
            guard value >= 0, value < Double(Int32.max), value == value.rounded() else {
                throw ImportError(.labelOutOfRange, file: file, field: field(), found: "\(value)",
                                  expected: "a class id (a whole number ≥ 0), or -1 or NaN for an unlabelled node")
            }
            classes.append(Int32(value))
        } else {
            guard value == 0 || value == 1 else {
                throw ImportError(.labelOutOfRange, file: file, field: field(), found: value.map { "\($0)" } ?? "empty",
                                  expected: "0 or 1 (a multi-label file has a target for every task)")
            }
            targets.append(value == 1 ? 1 : 0)
        }
    }

    /// The labels collected; a single-label file must label at least one node.
    func labels(file: String) throws -> NodeLabels {
        guard columns == 1 else { return .multiLabel(targets: targets, classCount: columns) }
        let classCount = Int(classes.max() ?? -1) + 1
        guard classCount > 0 else {
            throw ImportError(.labelOutOfRange, file: file, field: "labels", found: "no labelled node", expected: "at least one class id")
        }
        return .singleLabel(classes: classes, classCount: classCount)
    }
}
