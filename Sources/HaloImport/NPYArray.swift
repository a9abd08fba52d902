import Foundation

/// One NumPy `.npy` array: its header (format versions 1.0, 2.0 and 3.0) parsed, its data left where it lies and
/// converted element by element to the type the dataset needs, with range checks.
///
/// Read: little-endian (or byte-sized) booleans, signed and unsigned integers of 1, 2, 4 and 8 bytes, and 16-, 32-
/// and 64-bit floats (16-bit as OGB may store features; widened exactly); C order, or Fortran order for 1- and 2-dimensional arrays. Refused, saying so: big-endian data,
/// structured and object dtypes (pickled Python objects, which cannot be read safely), complex and long-double floats.
struct NPYArray {
    enum ElementType: String, CaseIterable {
        case bool = "b1", int8 = "i1", uint8 = "u1", int16 = "i2", uint16 = "u2", int32 = "i4", uint32 = "u4"
        case int64 = "i8", uint64 = "u8", float16 = "f2", float32 = "f4", float64 = "f8"

        var size: Int { Int(rawValue.dropFirst())! }
        var isFloat: Bool { self == .float16 || self == .float32 || self == .float64 }
    }

    let displayName: String
    let type: ElementType
    let shape: [Int]
    let fortranOrder: Bool
    /// The element bytes, exactly `count * type.size` of them.
    let data: Data

    var count: Int { shape.reduce(1, *) }

    init(_ bytes: Data, displayName: String) throws {
        let header = try NPYHeader(bytes, fileSize: bytes.count, displayName: displayName)
        self.displayName = displayName
        type = header.type
        shape = header.shape
        fortranOrder = header.fortranOrder
        data = bytes[(bytes.startIndex + header.dataOffset)...]
    }

    /// The shape as errors show it: `(2708, 1433)`.
    var shapeText: String { NPYHeader.text(of: shape) }

    /// The elements in C (row-major) order as integers in `range`, converted to `T`. Floats must be whole numbers.
    func integers<T: FixedWidthInteger>(_ type: T.Type, in range: ClosedRange<Int64>, meaning: String) throws -> [T] {
        var result = [T]()
        result.reserveCapacity(count)
        try forEachElement { index, value in
            guard let whole = value.integer, range.contains(whole) else {
                throw ImportError(.idOutOfRange, file: displayName, field: "\(meaning) at flat index \(index)", found: value.description,
                                  expected: "a whole number in \(range.lowerBound)...\(range.upperBound)")
            }
            result.append(T(whole))
        }
        return result
    }

    /// The elements in C order as finite 32-bit floats.
    func finiteFloats(meaning: String) throws -> [Float] {
        var result = [Float]()
        result.reserveCapacity(count)
        try forEachElement { index, value in
            result.append(try Self.finiteFloat(value, index: index, displayName: displayName, meaning: meaning))
        }
        return result
    }

    /// One element, as read.
    enum Element: CustomStringConvertible {
        case integer(Int64)
        case unsigned(UInt64)
        case real(Double)

        var integer: Int64? {
            switch self {
            case .integer(let v): return v
            case .unsigned(let v): return v <= UInt64(Int64.max) ? Int64(v) : nil
            case .real(let v): return v.isFinite && v == v.rounded() && abs(v) < 9.0e18 ? Int64(v) : nil
            }
        }

        /// The value as a `Double` (exact for floats, and for integers up to 2^53).
        var real: Double {
            switch self {
            case .integer(let v): return Double(v)
            case .unsigned(let v): return Double(v)
            case .real(let v): return v
            }
        }

        var float: Float {
            switch self {
            case .integer(let v): return Float(v)
            case .unsigned(let v): return Float(v)
            case .real(let v): return Float(v)
            }
        }

        var description: String {
            switch self {
            case .integer(let v): return "\(v)"
            case .unsigned(let v): return "\(v)"
            case .real(let v): return "\(v)"
            }
        }
    }

    /// Calls `body` with (C-order index, element) for every element, in C order.
    func forEachElement(_ body: (Int, Element) throws -> Void) throws {
        let rows = shape.first ?? 1, cols = shape.count == 2 ? shape[1] : 1
        let type = self.type
        try data.withUnsafeBytes { raw in
            if fortranOrder {
                // Column-major storage: element (i, j) lies at j * rows + i.
                for i in 0..<rows { for j in 0..<cols { try body(i * cols + j, Self.element(in: raw, at: (j * rows + i) * type.size, type: type)) } }
            } else {
                for i in 0..<count { try body(i, Self.element(in: raw, at: i * type.size, type: type)) }
            }
        }
    }

    /// The element of `type` whose bytes start at `offset` in `raw`.
    static func element(in raw: UnsafeRawBufferPointer, at offset: Int, type: ElementType) -> Element {
        switch type {
        case .bool, .uint8: return .unsigned(UInt64(raw[offset]))
        case .int8: return .integer(Int64(Int8(bitPattern: raw[offset])))
        case .int16: return .integer(Int64(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int16.self))))
        case .uint16: return .unsigned(UInt64(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self))))
        case .int32: return .integer(Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int32.self))))
        case .uint32: return .unsigned(UInt64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))))
        case .int64: return .integer(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: Int64.self)))
        case .uint64: return .unsigned(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
        case .float16: return .real(Double(float(halfBits: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))))
        case .float32: return .real(Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))))
        case .float64: return .real(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))))
        }
    }

    /// `element` as a finite 32-bit float, or an error naming it by its C-order `index`.
    static func finiteFloat(_ element: Element, index: Int, displayName: String, meaning: String) throws -> Float {
        let single = element.float
        guard single.isFinite else {
            throw ImportError(.nonFinite, file: displayName, field: "\(meaning) at flat index \(index)", found: element.description,
                              expected: "a finite number representable as a 32-bit float")
        }
        return single
    }

    /// An IEEE 754 half-precision value widened to `Float`, which holds every half exactly. Done by hand because
    /// Swift's `Float16` is missing on some platforms (macOS on Intel).
    static func float(halfBits bits: UInt16) -> Float {
        let sign: Float = bits & 0x8000 == 0 ? 1 : -1
        let exponent = Int((bits >> 10) & 0x1F), fraction = UInt32(bits & 0x3FF)
        switch exponent {
        case 0:
            // Zero and subnormals: fraction × 2^-24.
            return sign * Float(fraction) * 0x1p-24
        case 0x1F:
            return fraction == 0 ? sign * .infinity : .nan
        default:
            // Rebias the exponent from 15 to 127 and widen the fraction from 10 to 23 bits.
            let magnitude = Float(bitPattern: UInt32(exponent + 112) << 23 | fraction << 13)
            return sign * magnitude
        }
    }
}
