import Foundation

/// Writes NumPy `.npy` arrays (format 1.0 unless asked otherwise), so tests can build .npz files without numpy.
public enum NPYEncoder {
    /// An array of `descr` (e.g. `<i4`) and `shape` whose element bytes are `body`, laid out as numpy does: the
    /// header padded with spaces so the data starts at a multiple of 64 bytes.
    public static func array(descr: String, shape: [Int], body: Data, fortranOrder: Bool = false, version: UInt8 = 1) -> Data {
        let shapeText = "(" + shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? ",)" : ")")
        var header = "{'descr': '\(descr)', 'fortran_order': \(fortranOrder ? "True" : "False"), 'shape': \(shapeText), }"
        let prefix = 6 + 2 + (version == 1 ? 2 : 4)
        while (prefix + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var out = Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, version, 0])
        let length = header.utf8.count
        if version == 1 {
            out.append(contentsOf: [UInt8(length & 0xFF), UInt8(length >> 8)])
        } else {
            out.append(contentsOf: (0..<4).map { UInt8((length >> (8 * $0)) & 0xFF) })
        }
        out.append(Data(header.utf8))
        out.append(body)
        return out
    }

    public static func array<T: BitwiseCopyable>(_ values: [T], descr: String, shape: [Int]? = nil) -> Data {
        array(descr: descr, shape: shape ?? [values.count], body: values.withUnsafeBytes { Data($0) })
    }

    public static func int32(_ values: [Int32], shape: [Int]? = nil) -> Data { array(values, descr: "<i4", shape: shape) }
    public static func int64(_ values: [Int64], shape: [Int]? = nil) -> Data { array(values, descr: "<i8", shape: shape) }
    public static func float32(_ values: [Float], shape: [Int]? = nil) -> Data { array(values, descr: "<f4", shape: shape) }
    public static func float64(_ values: [Double], shape: [Int]? = nil) -> Data { array(values, descr: "<f8", shape: shape) }
    public static func bool(_ values: [Bool], shape: [Int]? = nil) -> Data { array(values.map { UInt8($0 ? 1 : 0) }, descr: "|b1", shape: shape) }
}
