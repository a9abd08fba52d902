// Writes a halo-dataset directory (single-label, dense features, symmetric graph) as an OGB node-property tree
// with plain CSV files: raw/{num-node-list,num-edge-list,edge,node-feat,node-label}.csv and
// split/random/{train,valid,test}.csv, each undirected edge once (as ogbn-products stores them). The benchmark
// script gzips the files afterwards. Standalone (Foundation only), compiled with `swiftc -O`.
//
// usage: ogb_tree_from_dataset DATASET_DIR OUT_DIR
import Foundation

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: ogb_tree_from_dataset DATASET_DIR OUT_DIR\n".utf8))
    exit(2)
}
let source = URL(fileURLWithPath: arguments[1]), out = URL(fileURLWithPath: arguments[2])
let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("meta.json"))) as! [String: Any]
let n = meta["num_nodes"] as! Int, width = meta["num_features"] as! Int
guard (meta["files"] as! [String]).contains("features.f32"), meta["multilabel"] as? Bool == false else {
    FileHandle.standardError.write(Data("needs a single-label dataset with dense features\n".utf8))
    exit(2)
}

func load<T>(_ name: String, as: T.Type) throws -> [T] {
    let data = try Data(contentsOf: source.appendingPathComponent(name), options: .alwaysMapped)
    return data.withUnsafeBytes { Array($0.bindMemory(to: T.self)) }
}

/// Buffered text output to one file.
final class TextFile {
    private let handle: FileHandle
    private var buffer: [UInt8] = []

    init(_ relative: String) throws {
        let url = out.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: url.path, contents: nil)
        handle = try FileHandle(forWritingTo: url)
        buffer.reserveCapacity(1 << 22)
    }

    func append(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 22 { flush() }
    }

    func append(_ value: Int32) { append(String(value)) }

    func byte(_ b: UInt8) { buffer.append(b) }

    func flush() {
        handle.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }

    func close() {
        flush()
        try? handle.close()
    }
}

let pairs = try load("edges.i32", as: Int32.self)
let edges = try TextFile("raw/edge.csv")
var undirected = 0
for e in 0..<(pairs.count / 2) where pairs[2 * e] < pairs[2 * e + 1] {
    edges.append(pairs[2 * e]); edges.byte(0x2C); edges.append(pairs[2 * e + 1]); edges.byte(0x0A)
    undirected += 1
}
edges.close()
for (name, value) in [("num-node-list", n), ("num-edge-list", undirected)] {
    let file = try TextFile("raw/\(name).csv")
    file.append("\(value)\n")
    file.close()
}

let features = try load("features.f32", as: Float.self)
let featureFile = try TextFile("raw/node-feat.csv")
for v in 0..<n {
    for j in 0..<width {
        if j > 0 { featureFile.byte(0x2C) }
        featureFile.append(features[v * width + j].description)
    }
    featureFile.byte(0x0A)
}
featureFile.close()

let labels = try load("labels.i32", as: Int32.self)
let labelFile = try TextFile("raw/node-label.csv")
for label in labels { labelFile.append(label == -1 ? "nan\n" : "\(label)\n") }
labelFile.close()

for (mask, name) in [("train_mask.u8", "train"), ("val_mask.u8", "valid"), ("test_mask.u8", "test")] {
    let flags = try load(mask, as: UInt8.self)
    let file = try TextFile("split/random/\(name).csv")
    for v in 0..<n where flags[v] == 1 { file.append("\(v)\n") }
    file.close()
}
print("wrote \(out.path): \(n) nodes, \(undirected) undirected edges, \(width) features")
