/// A value of the Python literals an `.npy` header uses.
enum PythonLiteral: Equatable {
    case string(String)
    case bool(Bool)
    case integer(Int)
    /// A tuple of integers (the only tuples a header holds: its shape).
    case tuple([Int])
}

/// Parses the dict literal of an `.npy` header, `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`:
/// strings, True/False, integers and tuples of integers, nothing else (no evaluation of arbitrary Python).
struct PythonLiteralParser {
    struct Problem: Error {
        let message: String
    }

    private let characters: [Character]
    private var position = 0

    init(_ text: String) { characters = Array(text) }

    mutating func parseDictionary() throws -> [String: PythonLiteral] {
        try expect("{")
        var result: [String: PythonLiteral] = [:]
        while true {
            skipSpace()
            if peek() == "}" { position += 1; break }
            guard case .string(let key) = try parseValue() else { throw Problem(message: "a key that is not a string") }
            try expect(":")
            result[key] = try parseValue()
            skipSpace()
            if peek() == "," { position += 1; continue }
            try expect("}")
            break
        }
        skipSpace()
        guard position == characters.count else { throw Problem(message: "text after the closing brace") }
        return result
    }

    private mutating func parseValue() throws -> PythonLiteral {
        skipSpace()
        guard let c = peek() else { throw Problem(message: "unexpected end") }
        switch c {
        case "'", "\"":
            position += 1
            var text = ""
            while let d = peek(), d != c { text.append(d); position += 1 }
            guard peek() == c else { throw Problem(message: "an unterminated string") }
            position += 1
            return .string(text)
        case "(":
            position += 1
            var items: [Int] = []
            while true {
                skipSpace()
                if peek() == ")" { position += 1; break }
                guard case .integer(let value) = try parseValue() else { throw Problem(message: "a tuple item that is not an integer") }
                items.append(value)
                skipSpace()
                if peek() == "," { position += 1; continue }
                try expect(")")
                break
            }
            return .tuple(items)
        default:
            var word = ""
            while let d = peek(), d.isLetter || d.isNumber || d == "-" || d == "_" { word.append(d); position += 1 }
            if word == "True" { return .bool(true) }
            if word == "False" { return .bool(false) }
            // Python 2 era headers wrote long integers as `3L`.
            if let value = Int(word.hasSuffix("L") ? String(word.dropLast()) : word) { return .integer(value) }
            throw Problem(message: word.isEmpty ? "unexpected '\(c)'" : "unexpected '\(word)'")
        }
    }

    private func peek() -> Character? { position < characters.count ? characters[position] : nil }

    private mutating func skipSpace() {
        while let c = peek(), c.isWhitespace { position += 1 }
    }

    private mutating func expect(_ c: Character) throws {
        skipSpace()
        guard peek() == c else { throw Problem(message: peek().map { "'\($0)' where '\(c)' belongs" } ?? "an end where '\(c)' belongs") }
        position += 1
    }
}
