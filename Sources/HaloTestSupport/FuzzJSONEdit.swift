import Foundation

/// Edits one field of a JSON document the way a hand edit, a bad tool or a hostile file would: a key removed or
/// added, a value of the wrong type, an extreme or off-by-one number, a string that names another file.
///
/// Works on `JSONSerialization`'s untyped tree, so it can produce documents no `Codable` type would write. Values are
/// chosen from lists of the ones readers get wrong (2^31−1 and 2^63−1 overflow products; −1 and 0 reach ranges;
/// "NaN" and 1e300 are not integers), plus the old value ± 1, which stays plausible and so tests the semantic checks.
public enum FuzzJSONEdit {
    /// One step of a path into a JSON tree.
    public enum Step: CustomStringConvertible {
        case key(String)
        case index(Int)

        public var description: String {
            switch self {
            case .key(let k): k
            case .index(let i): "[\(i)]"
            }
        }
    }

    /// Replacement values of the wrong type or an extreme size (no floating-point NaN or infinity: JSON has none).
    /// Immutable after initialisation; `[Any]` is not `Sendable` only because it could hold a reference type.
    public nonisolated(unsafe) static let extremeValues: [Any] = [
        0, -1, 1, 2, Int(Int32.max), Int(Int32.max) + 1, Int(Int32.min), Int.max, Int.min, 1e300, -1e300, 0.5,
        "NaN", "", "a string", "-1", true, false, NSNull(), [Any](), [String: Any](), ["x": 1] as [String: Any],
        "0000000000000000", "ffffffffffffffff", "part-0", "part-1", "edges.i32", "labels.i32", "inner_ids.i32",
        "dense", "sparse", "halo-dataset", "halo-partitions", "xxh64",
    ]

    /// Applies one random edit to the JSON in `data`; nil (and no edit) if `data` is not a JSON object.
    public static func edit(_ data: Data, rng: inout TestRNG) -> (data: Data, description: String)? {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        var paths: [[Step]] = []
        collectPaths(root, prefix: [], into: &paths)
        guard !paths.isEmpty else { return nil }
        let path = paths[rng.int(0..<paths.count)]
        let name = path.map(\.description).joined(separator: ".")
        let edited: Any?
        let what: String
        switch rng.int(0..<10) {
        case 0:
            edited = replacing(in: root, at: path[...], with: nil)
            what = "removed \(name)"
        case 1:
            // A key readers do not know: must be ignored or refused, never misread.
            let extra = ["unexpected_key", "num_nodes", "xxh64", "files", "checksum"][rng.int(0..<5)]
            var object = root
            object[extra + (rng.int(0..<2) == 0 ? "" : "_extra")] = extremeValues[rng.int(0..<extremeValues.count)]
            edited = object
            what = "added key \(extra)"
        case 2, 3:
            let old = value(in: root, at: path[...])
            if let number = old as? NSNumber, number.doubleValue.rounded() == number.doubleValue, abs(number.doubleValue) < 9e18 {
                let delta = [-1, 1, -2, 2, 1 << 20][rng.int(0..<5)]
                edited = replacing(in: root, at: path[...], with: number.intValue &+ delta)
                what = "\(name) \(number.intValue) + \(delta)"
            } else if let array = old as? [Any], !array.isEmpty {
                // Repeat or drop an element: repeated file names, a part list one short.
                var changed = array
                if rng.int(0..<2) == 0 { changed.append(array[rng.int(0..<array.count)]) } else { changed.remove(at: rng.int(0..<array.count)) }
                edited = replacing(in: root, at: path[...], with: changed)
                what = "\(name) resized from \(array.count) to \(changed.count) elements"
            } else {
                let value = extremeValues[rng.int(0..<extremeValues.count)]
                edited = replacing(in: root, at: path[...], with: value)
                what = "\(name) = \(value)"
            }
        default:
            let value = extremeValues[rng.int(0..<extremeValues.count)]
            edited = replacing(in: root, at: path[...], with: value)
            what = "\(name) = \(value)"
        }
        guard let object = edited, JSONSerialization.isValidJSONObject(object) else { return nil }
        return (FuzzDirectoryImage.encodeJSON(object), "JSON edit of " + what)
    }

    /// Keys that name one quantity, in the dataset's meta.json, a manifest and a part's meta.json.
    public static let sameQuantity: [[String]] = [
        ["num_nodes", "nodes", "total_nodes"], ["num_classes", "classes"], ["num_features", "feature_width"],
        ["num_edges_directed", "directed_edges"], ["feature_nnz"], ["inner"], ["central"], ["halo"], ["edges"], ["send"],
        ["parts", "part_count"], ["multilabel"], ["train"], ["format_version"],
    ]

    /// Sets one quantity to one value in every JSON file of `image` that has it, as a forger who edits consistently
    /// would: a count no single file contradicts, so only the data files' sizes and content can.
    public static func editEverywhere(_ image: inout FuzzDirectoryImage, rng: inout TestRNG) -> String? {
        let keys = sameQuantity[rng.int(0..<sameQuantity.count)]
        let value: Any = rng.int(0..<3) == 0 ? extremeValues[rng.int(0..<extremeValues.count)]
            : [0, 1, -1, 2, 3, Int(Int32.max), Int(Int32.max) + 1, Int.max, 1 << 40][rng.int(0..<9)]
        var edited: [String] = []
        for path in image.sortedPaths where path.hasSuffix(".json") {
            guard let root = try? JSONSerialization.jsonObject(with: image.files[path]!) else { continue }
            var changed = false
            let updated = replacingKeys(Set(keys), in: root, with: value, changed: &changed)
            if changed, JSONSerialization.isValidJSONObject(updated) {
                image.files[path] = FuzzDirectoryImage.encodeJSON(updated)
                edited.append(path)
            }
        }
        return edited.isEmpty ? nil : "JSON edit of \(keys.joined(separator: "/")) = \(value) in \(edited.joined(separator: ", "))"
    }

    private static func replacingKeys(_ keys: Set<String>, in node: Any, with value: Any, changed: inout Bool) -> Any {
        if var object = node as? [String: Any] {
            for (key, child) in object {
                if keys.contains(key) {
                    object[key] = value
                    changed = true
                } else {
                    object[key] = replacingKeys(keys, in: child, with: value, changed: &changed)
                }
            }
            return object
        }
        if let array = node as? [Any] { return array.map { replacingKeys(keys, in: $0, with: value, changed: &changed) } }
        return node
    }

    /// Every path to a value (containers included), depth first.
    private static func collectPaths(_ node: Any, prefix: [Step], into paths: inout [[Step]]) {
        if let object = node as? [String: Any] {
            for key in object.keys.sorted() {
                let path = prefix + [.key(key)]
                paths.append(path)
                collectPaths(object[key]!, prefix: path, into: &paths)
            }
        } else if let array = node as? [Any] {
            for (i, element) in array.enumerated() {
                let path = prefix + [.index(i)]
                paths.append(path)
                collectPaths(element, prefix: path, into: &paths)
            }
        }
    }

    private static func value(in node: Any, at path: ArraySlice<Step>) -> Any? {
        guard let step = path.first else { return node }
        switch step {
        case .key(let k): return (node as? [String: Any])?[k].flatMap { value(in: $0, at: path.dropFirst()) }
        case .index(let i): return (node as? [Any]).flatMap { i < $0.count ? value(in: $0[i], at: path.dropFirst()) : nil }
        }
    }

    /// `node` with the value at `path` replaced by `newValue`, or removed when it is nil.
    private static func replacing(in node: Any, at path: ArraySlice<Step>, with newValue: Any?) -> Any? {
        guard let step = path.first else { return newValue }
        switch step {
        case .key(let k):
            guard var object = node as? [String: Any], let child = object[k] else { return node }
            object[k] = path.count == 1 ? newValue : replacing(in: child, at: path.dropFirst(), with: newValue)
            return object
        case .index(let i):
            guard var array = node as? [Any], i < array.count else { return node }
            if path.count == 1 {
                if let newValue { array[i] = newValue } else { array.remove(at: i) }
            } else if let changed = replacing(in: array[i], at: path.dropFirst(), with: newValue) {
                array[i] = changed
            }
            return array
        }
    }
}
