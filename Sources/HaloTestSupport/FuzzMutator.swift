import Foundation

/// Draws and applies the mutations of one fuzz case to a directory image.
///
/// Kinds, each with its own reason to exist:
/// - truncation and extension: sizes that disagree with the metadata (by whole elements and by odd bytes), and
///   rows removed or appended with every matching count in the JSON files changed to agree;
/// - bit flips and random bytes: what storage corruption does;
/// - element edits with typed values (int32/int64 ids and offsets, floats, mask bytes): −1, 0, maxima, the old value
///   ± 1, a copy of another element; the ± 1 and copy edits stay in range and so reach the semantic checks;
/// - element swaps: a permutation keeps every value in range, so only structural checks (sortedness, CSR shape,
///   agreement between files) can see it;
/// - JSON field edits (`FuzzJSONEdit`), in one file or, consistently, in every file that records the field;
/// - deleted, renamed and swapped files, and files (or whole part directories) swapped in from another
///   directory of the same format: everything is well-formed, only cross-checks can object.
/// After the edits, a fuzz case usually reseals the checksums, so the edits are forged rather than corrupted.
public struct FuzzMutator {
    /// Directories of the same format whose files can be swapped in.
    public let donors: [FuzzDirectoryImage]

    public init(donors: [FuzzDirectoryImage]) {
        self.donors = donors
    }

    /// The mutations of one fuzz case: one edit, or now and then two or three (a single edit gets furthest into the
    /// readers; stacked ones reach combinations), then mostly the checksums recomputed (checksums that match are
    /// what lets an edit reach the content checks), and now and then one more edit after that (a forgery corrupted
    /// afterwards). Returns what was done, step by step, for replay messages.
    public func mutateCase(_ image: inout FuzzDirectoryImage, rng: inout TestRNG) -> [String] {
        var steps = (0..<[1, 1, 1, 2, 3][rng.int(0..<5)]).map { _ in mutate(&image, rng: &rng) }
        if rng.int(0..<10) < 7 {
            image.resealChecksums()
            steps.append("checksums resealed")
            if rng.int(0..<10) == 0 { steps.append(mutate(&image, rng: &rng)) }
        }
        return steps
    }

    /// Applies one random mutation to `image`; returns what it did, for replay messages.
    public func mutate(_ image: inout FuzzDirectoryImage, rng: inout TestRNG) -> String {
        let paths = image.sortedPaths
        guard !paths.isEmpty else { return "nothing to mutate (empty directory)" }
        let binaries = paths.filter { !$0.hasSuffix(".json") }, jsons = paths.filter { $0.hasSuffix(".json") }
        // Content edits dominate: they are the cases where the readers must look inside the files.
        switch rng.int(0..<100) {
        case 0..<30:
            guard !binaries.isEmpty else { return mutate(&image, rng: &rng) }
            return editElement(&image, binaries[rng.int(0..<binaries.count)], rng: &rng)
        case 30..<40:
            guard !binaries.isEmpty else { return mutate(&image, rng: &rng) }
            return swapElements(&image, binaries[rng.int(0..<binaries.count)], rng: &rng)
        case 40..<45:
            guard let what = FuzzJSONEdit.editEverywhere(&image, rng: &rng) else { return mutate(&image, rng: &rng) }
            return what
        case 45..<62:
            let file = jsons.isEmpty ? paths[0] : jsons[rng.int(0..<jsons.count)]
            guard let (data, what) = FuzzJSONEdit.edit(image.files[file]!, rng: &rng) else {
                return flipBits(&image, file, rng: &rng)
            }
            image.files[file] = data
            return "\(file): \(what)"
        case 62..<66:
            return resize(&image, paths[rng.int(0..<paths.count)], rng: &rng)
        case 66..<70:
            guard !binaries.isEmpty else { return mutate(&image, rng: &rng) }
            return resizeConsistently(&image, binaries[rng.int(0..<binaries.count)], rng: &rng)
        case 70..<76:
            return flipBits(&image, paths[rng.int(0..<paths.count)], rng: &rng)
        case 76..<80:
            let file = paths[rng.int(0..<paths.count)]
            image.files[file] = nil
            return "deleted \(file)"
        case 80..<85:
            return moveFile(&image, rng: &rng)
        case 85..<92:
            return transplant(&image, rng: &rng)
        default:
            return swapFiles(&image, rng: &rng)
        }
    }

    // MARK: Binary content

    /// Element size of a data file, from its extension (`.i32`, `.i64`, `.f32`, `.u8`); 1 for anything else.
    public static func elementSize(_ path: String) -> Int {
        if path.hasSuffix(".i64") { return 8 }
        if path.hasSuffix(".i32") || path.hasSuffix(".f32") { return 4 }
        return 1
    }

    private func editElement(_ image: inout FuzzDirectoryImage, _ file: String, rng: inout TestRNG) -> String {
        var data = image.files[file]!
        let size = Self.elementSize(file), count = data.count / size
        guard count > 0 else { return resize(&image, file, rng: &rng) }
        let k = rng.int(0..<count), other = rng.int(0..<count)
        func element<T: FixedWidthInteger>(_: T.Type, _ index: Int) -> T {
            data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: index * size, as: T.self) }
        }
        func store<T>(_ value: T) {
            withUnsafeBytes(of: value) { data.replaceSubrange((k * size)..<((k + 1) * size), with: $0) }
        }
        let described: String
        if file.hasSuffix(".i32") {
            let old = element(Int32.self, k)
            let value: Int32 = [0, -1, 1, Int32.max, Int32.min, old &+ 1, old &- 1, element(Int32.self, other), old &* 2,
                                Int32(truncatingIfNeeded: rng.next())][rng.int(0..<10)]
            store(value)
            described = "\(old) → \(value)"
        } else if file.hasSuffix(".i64") {
            let old = element(Int64.self, k)
            let value: Int64 = [0, -1, 1, Int64.max, Int64.min, Int64(Int32.max) + 1, old &+ 1, old &- 1,
                                element(Int64.self, other), old &* 2][rng.int(0..<10)]
            store(value)
            described = "\(old) → \(value)"
        } else if file.hasSuffix(".f32") {
            let old = Float(bitPattern: element(UInt32.self, k))
            let value: Float = [.nan, .infinity, -.infinity, 0, -0.0, 1, .greatestFiniteMagnitude, -1e30,
                                .leastNonzeroMagnitude, old + 1, Float(bitPattern: element(UInt32.self, other))][rng.int(0..<11)]
            store(value.bitPattern)
            described = "\(old) → \(value)"
        } else {
            let old = data[k]
            let value: UInt8 = [0, 1, 2, 255, old ^ 1][rng.int(0..<5)]
            store(value)
            described = "\(old) → \(value)"
        }
        image.files[file] = data
        return "\(file): element \(k) \(described)"
    }

    private func swapElements(_ image: inout FuzzDirectoryImage, _ file: String, rng: inout TestRNG) -> String {
        var data = image.files[file]!
        let size = Self.elementSize(file), count = data.count / size
        guard count >= 2 else { return editElement(&image, file, rng: &rng) }
        let a = rng.int(0..<count)
        // Neighbours half the time: the swap most likely to keep a plausible order.
        let b = rng.int(0..<2) == 0 ? (a + 1) % count : rng.int(0..<count)
        let first = data.subdata(in: (a * size)..<((a + 1) * size)), second = data.subdata(in: (b * size)..<((b + 1) * size))
        data.replaceSubrange((a * size)..<((a + 1) * size), with: second)
        data.replaceSubrange((b * size)..<((b + 1) * size), with: first)
        image.files[file] = data
        return "\(file): swapped elements \(a) and \(b)"
    }

    private func resize(_ image: inout FuzzDirectoryImage, _ file: String, rng: inout TestRNG) -> String {
        var data = image.files[file]!
        let size = Self.elementSize(file)
        switch rng.int(0..<5) {
        case 0:
            let length = data.isEmpty ? 0 : rng.int(0..<data.count)
            data = data.prefix(length)
            image.files[file] = data
            return "\(file): truncated to \(length) bytes"
        case 1:
            data = data.dropLast(min(size, data.count))
            image.files[file] = Data(data)
            return "\(file): last element removed"
        case 2:
            data.append(Data(repeating: 0, count: size))
            image.files[file] = data
            return "\(file): zero element appended"
        case 3:
            data.append(Data((0..<rng.int(1..<9)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }))
            image.files[file] = data
            return "\(file): random bytes appended"
        default:
            image.files[file] = Data()
            return "\(file): emptied"
        }
    }

    /// Removes or appends one row of a file and changes, in every JSON file, each count equal to the file's old row
    /// count to the new one (a row is one element, or two for the edge list's pairs): the sizes then agree with the
    /// metadata, so the readers' checks of content and of counts between files must object instead.
    private func resizeConsistently(_ image: inout FuzzDirectoryImage, _ file: String, rng: inout TestRNG) -> String {
        var data = image.files[file]!
        let size = Self.elementSize(file), elements = data.count / size
        let rowElements = file.hasSuffix("edges.i32") ? 2 : 1
        let rows = elements / rowElements
        let grow = rows == 0 || rng.int(0..<2) == 0
        let rowBytes = rowElements * size
        if grow {
            // A copy of an existing row (or zeros): plausible content, so only structure can give it away.
            if rows == 0 {
                data.append(Data(repeating: 0, count: rowBytes))
            } else {
                let r = rng.int(0..<rows)
                data.append(data.subdata(in: (r * rowBytes)..<((r + 1) * rowBytes)))
            }
        } else {
            data.removeLast(rowBytes)
        }
        image.files[file] = data
        let newRows = grow ? rows + 1 : rows - 1
        var edited: [String] = []
        for path in image.sortedPaths where path.hasSuffix(".json") {
            guard let root = try? JSONSerialization.jsonObject(with: image.files[path]!) else { continue }
            var changed = false
            let updated = Self.replacingIntegers(equalTo: rows, with: newRows, in: root, changed: &changed)
            if changed {
                image.files[path] = FuzzDirectoryImage.encodeJSON(updated)
                edited.append(path)
            }
        }
        return "\(file): \(grow ? "row appended" : "last row removed") (\(rows) → \(newRows) rows), counts of \(rows) changed in "
            + (edited.isEmpty ? "no JSON file" : edited.joined(separator: ", "))
    }

    private static func replacingIntegers(equalTo old: Int, with new: Int, in node: Any, changed: inout Bool) -> Any {
        if let object = node as? [String: Any] {
            var result = object
            for (key, child) in object { result[key] = replacingIntegers(equalTo: old, with: new, in: child, changed: &changed) }
            return result
        }
        if let array = node as? [Any] { return array.map { replacingIntegers(equalTo: old, with: new, in: $0, changed: &changed) } }
        if !(node is String), let number = node as? NSNumber, number.doubleValue == Double(old) {
            changed = true
            return new
        }
        return node
    }

    private func flipBits(_ image: inout FuzzDirectoryImage, _ file: String, rng: inout TestRNG) -> String {
        var data = image.files[file]!
        guard !data.isEmpty else { return resize(&image, file, rng: &rng) }
        var flipped: [Int] = []
        for _ in 0..<rng.int(1..<4) {
            let bit = rng.int(0..<(data.count * 8))
            data[bit / 8] ^= UInt8(1 << (bit % 8))
            flipped.append(bit)
        }
        image.files[file] = data
        return "\(file): flipped bits \(flipped)"
    }

    // MARK: Files

    /// Renames a file, onto another file of the directory (replacing it) or to a name no reader knows.
    private func moveFile(_ image: inout FuzzDirectoryImage, rng: inout TestRNG) -> String {
        let paths = image.sortedPaths
        let from = paths[rng.int(0..<paths.count)]
        let to = rng.int(0..<3) == 0 ? from + ".bak" : paths[rng.int(0..<paths.count)]
        guard to != from else { return "renamed \(from) onto itself (no change)" }
        image.files[to] = image.files.removeValue(forKey: from)
        return "renamed \(from) to \(to)"
    }

    /// Swaps two files, or (in a partition directory) two whole part directories.
    private func swapFiles(_ image: inout FuzzDirectoryImage, rng: inout TestRNG) -> String {
        let paths = image.sortedPaths
        let parts = Set(paths.compactMap { $0.split(separator: "/").count == 2 ? String($0.split(separator: "/")[0]) : nil }).sorted()
        if parts.count >= 2 && rng.int(0..<3) == 0 {
            let a = parts[rng.int(0..<parts.count)], b = parts[rng.int(0..<parts.count)]
            guard a != b else { return "swapped \(a) with itself (no change)" }
            var moved: [String: Data] = [:]
            for (path, data) in image.files {
                if path.hasPrefix(a + "/") { moved[b + path.dropFirst(a.count)] = data }
                else if path.hasPrefix(b + "/") { moved[a + path.dropFirst(b.count)] = data }
                else { moved[path] = data }
            }
            image.files = moved
            return "swapped directories \(a) and \(b)"
        }
        // Prefer a file of the same name in another part, or one of the same extension: same shape, other content.
        let a = paths[rng.int(0..<paths.count)]
        let name = a.split(separator: "/").last.map(String.init) ?? a
        let sameName = paths.filter { $0 != a && $0.hasSuffix("/" + name) }
        let sameType = paths.filter { $0 != a && $0.split(separator: ".").last == a.split(separator: ".").last }
        let candidates = !sameName.isEmpty && rng.int(0..<2) == 0 ? sameName : (sameType.isEmpty ? paths : sameType)
        let b = candidates[rng.int(0..<candidates.count)]
        guard a != b else { return "swapped \(a) with itself (no change)" }
        (image.files[a], image.files[b]) = (image.files[b], image.files[a])
        return "swapped files \(a) and \(b)"
    }

    /// Replaces a file by the file of the same path in another directory of the same format.
    private func transplant(_ image: inout FuzzDirectoryImage, rng: inout TestRNG) -> String {
        guard !donors.isEmpty else { return swapFiles(&image, rng: &rng) }
        let donor = donors[rng.int(0..<donors.count)]
        let shared = image.sortedPaths.filter { donor.files[$0] != nil && donor.files[$0] != image.files[$0] }
        guard !shared.isEmpty else { return swapFiles(&image, rng: &rng) }
        let file = shared[rng.int(0..<shared.count)]
        image.files[file] = donor.files[file]
        return "\(file) replaced by another directory's"
    }
}
