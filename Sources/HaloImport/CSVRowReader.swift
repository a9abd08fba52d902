#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a headerless CSV of numbers (what OGB's `raw/` and `split/` files are) one line at a time from a stream,
/// without building strings: each line is parsed where it lies in the read buffer, so a file of any size costs one
/// buffer (grown only for a line longer than it).
final class CSVRowReader {
    private let stream: any ByteStream
    private var buffer: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var start = 0, end = 0
    private var streamEnded = false
    /// The 1-based number of the line last handed out.
    private(set) var lineNumber = 0

    var displayName: String { stream.displayName }

    init(_ stream: any ByteStream, bufferSize: Int = 1 << 20) {
        self.stream = stream
        capacity = bufferSize
        buffer = .allocate(capacity: bufferSize + 1)
    }

    deinit { buffer.deallocate() }

    /// Calls `body` with the fields of every line, in order. A blank line is a row of one empty field; a final line
    /// without a newline counts; `\r\n` line ends are accepted.
    func forEachRow(_ body: (inout CSVFields) throws -> Void) throws {
        while let (lineStart, length) = try nextLine() {
            lineNumber += 1
            var fields = CSVFields(line: UnsafeBufferPointer(start: buffer + lineStart, count: length), lineNumber: lineNumber, file: displayName)
            try body(&fields)
        }
    }

    /// The next line's offset and length in `buffer`, NUL-terminated there (the terminator overwrites the newline,
    /// or the spare byte after `capacity`), or nil at the end of the stream.
    private func nextLine() throws -> (Int, Int)? {
        var searchFrom = start
        while true {
            if let newline = memchr(buffer + searchFrom, 0x0A, end - searchFrom) {
                let position = buffer.distance(to: newline.assumingMemoryBound(to: UInt8.self))
                let lineStart = start
                var length = position - lineStart
                if length > 0 && buffer[lineStart + length - 1] == 0x0D { length -= 1 }
                buffer[lineStart + length] = 0
                start = position + 1
                return (lineStart, length)
            }
            if streamEnded {
                guard start < end else { return nil }
                let lineStart = start
                var length = end - start
                if buffer[lineStart + length - 1] == 0x0D { length -= 1 }
                buffer[lineStart + length] = 0
                start = end
                return (lineStart, length)
            }
            searchFrom = end
            // Keep the unfinished line, moved to the front, and read more behind it.
            if start > 0 {
                let pending = end - start
                buffer.update(from: buffer + start, count: pending)
                searchFrom -= start
                start = 0
                end = pending
            }
            if end == capacity {
                let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 * capacity + 1)
                grown.update(from: buffer, count: end)
                buffer.deallocate()
                buffer = grown
                capacity *= 2
            }
            let count = try stream.read(into: UnsafeMutableRawBufferPointer(start: buffer + end, count: capacity - end))
            if count == 0 { streamEnded = true }
            end += count
        }
    }
}

/// The fields of one CSV line, taken left to right. Every parse failure is an `ImportError` naming the file, the
/// line and the field.
struct CSVFields {
    /// The line without its end; `line.baseAddress[line.count]` is a NUL, which `strtod` stops at.
    let line: UnsafeBufferPointer<UInt8>
    let lineNumber: Int
    let file: String
    private var position = 0
    /// 0-based index of the next field.
    private(set) var fieldIndex = 0

    init(line: UnsafeBufferPointer<UInt8>, lineNumber: Int, file: String) {
        self.line = line
        self.lineNumber = lineNumber
        self.file = file
    }

    /// How many fields the line has (commas + 1).
    var count: Int { line.reduce(1) { $0 + ($1 == 0x2C ? 1 : 0) } }

    /// Whether every field has been taken.
    var isAtEnd: Bool { position > line.count }

    /// A base-10 integer (optional sign; no spaces, no decimals).
    mutating func nextInteger() throws -> Int64 {
        let begin = try fieldStart(expected: "an integer")
        var i = begin, negative = false
        if i < line.count && (line[i] == 0x2D || line[i] == 0x2B) { negative = line[i] == 0x2D; i += 1 }
        let digitsStart = i
        var value: Int64 = 0
        var overflow = false
        while i < line.count, line[i] >= 0x30, line[i] <= 0x39 {
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(Int64(line[i] - 0x30))
            value = sum
            overflow = overflow || o1 || o2
            i += 1
        }
        guard i > digitsStart, i == line.count || line[i] == 0x2C, !overflow else {
            throw badField(from: begin, expected: overflow ? "an integer that fits in 64 bits" : "an integer")
        }
        finishField(at: i)
        return negative ? -value : value
    }

    /// A decimal number as `strtod` reads it (`1`, `-0.25`, `1e-3`, `nan`, `inf`); `nil` for an empty field.
    /// The caller decides whether NaN and infinities are allowed.
    mutating func nextNumber(expected: String = "a number") throws -> Double? {
        let begin = try fieldStart(expected: expected)
        if begin == line.count || line[begin] == 0x2C {
            finishField(at: begin)
            return nil
        }
        if let (value, end) = DecimalFastPath.parse(line, from: begin), end == line.count || line[end] == 0x2C {
            finishField(at: end)
            return value
        }
        let base = line.baseAddress! + begin
        var stop: UnsafeMutablePointer<CChar>?
        let value = base.withMemoryRebound(to: CChar.self, capacity: line.count - begin + 1) { strtod($0, &stop) }
        let consumed = stop.map { UnsafeRawPointer($0) - UnsafeRawPointer(base) } ?? 0
        let i = begin + consumed
        // strtod skips leading spaces; a field that is only spaces or text consumed nothing.
        guard consumed > 0, i == line.count || line[i] == 0x2C, line[begin] != 0x20 else {
            throw badField(from: begin, expected: expected)
        }
        finishField(at: i)
        return value
    }

    /// A finite number, rounded to `Float` (the dataset format's feature type).
    mutating func nextFiniteFloat() throws -> Float {
        let index = fieldIndex, begin = position
        guard let value = try nextNumber(expected: "a finite number") else {
            throw badField(from: begin, expected: "a finite number", field: index)
        }
        let single = Float(value)
        guard single.isFinite else {
            throw ImportError(.nonFinite, file: file, field: "line \(lineNumber), field \(index + 1)", found: "\(value)",
                              expected: "a finite number representable as a 32-bit float")
        }
        return single
    }

    /// Throws unless every field was taken; `expected` says how many there should be.
    func finish(expected: String) throws {
        guard isAtEnd else {
            throw ImportError(.columnCount, file: file, field: "line \(lineNumber)", found: "\(count) fields (\(quoted))", expected: expected)
        }
    }

    /// The line as an error shows it: quoted, cut after 60 characters.
    var quoted: String {
        let shown = line.prefix(60)
        return "\"" + String(decoding: shown, as: UTF8.self) + (line.count > 60 ? "…" : "") + "\""
    }

    private mutating func fieldStart(expected: String) throws -> Int {
        guard position <= line.count else {
            throw ImportError(.columnCount, file: file, field: "line \(lineNumber)", found: "\(count) field\(count == 1 ? "" : "s") (\(quoted))",
                              expected: "at least \(fieldIndex + 1) fields, field \(fieldIndex + 1) being \(expected)")
        }
        return position
    }

    private mutating func finishField(at index: Int) {
        // Past the comma, or one past the end when the line is done.
        position = index + 1
        fieldIndex += 1
    }

    private func badField(from begin: Int, expected: String, field: Int? = nil) -> ImportError {
        var stop = begin
        while stop < line.count && line[stop] != 0x2C { stop += 1 }
        let text = String(decoding: line[begin..<min(stop, begin + 40)], as: UTF8.self)
        return ImportError(.badNumber, file: file, field: "line \(lineNumber), field \((field ?? fieldIndex) + 1)",
                           found: "\"\(text)\"", expected: expected)
    }
}
