import Foundation

/// The header of a NumPy `.npy` file (format versions 1.0, 2.0 and 3.0): what its data holds and where it starts.
/// Parsed apart from the data so that a reader can take the data from a stream (see `NPYStreamReader`).
struct NPYHeader {
    let type: NPYArray.ElementType
    let shape: [Int]
    /// Only ever true for 2-dimensional arrays (a 1-dimensional one reads the same either way).
    let fortranOrder: Bool
    /// Where the element bytes start, from the start of the file.
    let dataOffset: Int

    var count: Int { shape.reduce(1, *) }

    /// The shape as errors show it: `(2708, 1433)`.
    var shapeText: String { Self.text(of: shape) }

    static func text(of shape: [Int]) -> String { "(" + shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? ",)" : ")") }

    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    /// Parses the header at the front of `bytes`, which hold at least `dataOffset` bytes (see `size(ofHeaderIn:)`);
    /// `fileSize` is the length of the whole `.npy`, which must be the header and exactly the data its shape needs.
    init(_ bytes: Data, fileSize: Int, displayName: String) throws {
        func headerError(_ found: String, _ expected: String) -> ImportError {
            ImportError(.badHeader, file: displayName, field: "npy header", found: found, expected: expected)
        }
        let start = bytes.startIndex
        let (headerStart, headerLength) = try Self.layout(bytes, displayName: displayName)
        guard bytes.count >= headerStart + headerLength, fileSize >= headerStart + headerLength else {
            throw headerError("\(min(bytes.count, fileSize)) bytes, shorter than its \(headerLength)-byte header", "a complete header")
        }
        let major = bytes[start + 6]
        guard let text = String(bytes: bytes[(start + headerStart)..<(start + headerStart + headerLength)], encoding: major == 3 ? .utf8 : .ascii) else {
            throw headerError("a header that is not \(major == 3 ? "UTF-8" : "ASCII")", "a Python dict literal")
        }
        let header: [String: PythonLiteral]
        var parser = PythonLiteralParser(text)
        do { header = try parser.parseDictionary() } catch let problem as PythonLiteralParser.Problem {
            throw headerError("\"\(text.trimmingCharacters(in: .whitespacesAndNewlines).prefix(80))\" (\(problem.message))",
                              "a dict such as {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }")
        }
        guard case .string(let descr)? = header["descr"] else { throw headerError("no 'descr' string", "the dtype in 'descr', e.g. '<f4'") }
        guard case .bool(let fortran)? = header["fortran_order"] else { throw headerError("no 'fortran_order' boolean", "True or False") }
        guard case .tuple(let dimensions)? = header["shape"] else { throw headerError("no 'shape' tuple", "the shape, e.g. (3, 4)") }

        let order = descr.first.map(String.init) ?? ""
        guard let type = NPYArray.ElementType(rawValue: String(descr.dropFirst())), ["<", "|", "="].contains(order), order != "|" || type.size == 1 else {
            let reason = order == ">" ? "big-endian \(descr)" : descr.hasPrefix("|O") ? "\(descr) (Python objects)" : "\(descr)"
            throw ImportError(.unsupportedType, file: displayName, field: "dtype", found: reason,
                              expected: "little-endian bool, integers (i1…i8, u1…u8) or floats (f2, f4, f8): save with e.g. array.astype('<f4')")
        }
        if fortran && dimensions.count > 2 {
            throw ImportError(.unsupportedType, file: displayName, field: "memory order", found: "Fortran order with \(dimensions.count) dimensions",
                              expected: "C order (np.ascontiguousarray) for arrays of more than 2 dimensions")
        }
        var elements = 1
        for d in dimensions {
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard d >= 0, !overflow else { throw headerError("shape \(dimensions)", "non-negative dimensions of an addressable size") }
            elements = product
        }
        let available = fileSize - headerStart - headerLength
        let (needed, overflow) = elements.multipliedReportingOverflow(by: type.size)
        guard !overflow, needed == available else {
            throw ImportError(.shapeMismatch, file: displayName, field: "data size", found: "\(available) bytes",
                              expected: "\(overflow ? "an addressable size" : "\(needed) bytes") for shape \(dimensions) of \(descr)")
        }
        self.type = type
        shape = dimensions
        fortranOrder = fortran && dimensions.count == 2
        dataOffset = headerStart + headerLength
    }

    /// How many bytes the header at the front of `prefix` occupies, data offset included: what a reader must have
    /// read before parsing it. `prefix` needs the first 12 bytes of the file (or all of a shorter one).
    static func size(ofHeaderIn prefix: Data, displayName: String) throws -> Int {
        let (headerStart, headerLength) = try layout(prefix, displayName: displayName)
        return headerStart + headerLength
    }

    /// The magic and version checked; where the header text starts and how long it is.
    private static func layout(_ bytes: Data, displayName: String) throws -> (start: Int, length: Int) {
        func headerError(_ found: String, _ expected: String) -> ImportError {
            ImportError(.badHeader, file: displayName, field: "npy header", found: found, expected: expected)
        }
        let start = bytes.startIndex
        guard bytes.count >= 10, Array(bytes[start..<start + 6]) == magic else {
            throw headerError(bytes.count < 10 ? "\(bytes.count) bytes" : "no \\x93NUMPY magic", "a NumPy .npy file (\\x93NUMPY, version, header)")
        }
        let major = bytes[start + 6]
        let lengthBytes: Int
        switch major {
        case 1: lengthBytes = 2
        case 2, 3: lengthBytes = 4
        default: throw headerError("format version \(major).\(bytes[start + 7])", "version 1.0, 2.0 or 3.0")
        }
        guard bytes.count >= 8 + lengthBytes else { throw headerError("\(bytes.count) bytes", "a complete header length") }
        var headerLength = 0
        for k in 0..<lengthBytes { headerLength |= Int(bytes[start + 8 + k]) << (8 * k) }
        return (8 + lengthBytes, headerLength)
    }

}
