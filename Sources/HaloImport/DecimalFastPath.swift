/// Clinger's fast path for decimal text: a number of at most 15 significant digits (so the digits are an exact
/// double) scaled by at most 10^22 (an exact double too) is one correctly rounded multiplication or division, the
/// very value `strtod` returns. Feature files are mostly such numbers, and `strtod`'s general algorithm took a
/// third of an ogbn-products-sized import; anything else (more digits, larger exponents, `nan`, `inf`, hex) is
/// left to `strtod`.
enum DecimalFastPath {
    private static let powersOfTen: [Double] = (0...22).map { exponent in
        var value = 1.0
        for _ in 0..<exponent { value *= 10 }
        return value
    }

    /// The value of the number starting at `start` and the index just past it, or nil when the fast path does not
    /// apply (the caller then uses `strtod`).
    @inline(__always)
    static func parse(_ text: UnsafeBufferPointer<UInt8>, from start: Int) -> (Double, Int)? {
        var i = start
        var negative = false
        if i < text.count && (text[i] == 0x2D || text[i] == 0x2B) {
            negative = text[i] == 0x2D
            i += 1
        }
        var mantissa: UInt64 = 0
        var digits = 0, exponent = 0
        var sawDigit = false
        while i < text.count, text[i] &- 0x30 < 10 {
            sawDigit = true
            if mantissa != 0 || text[i] != 0x30 { digits += 1 }
            mantissa = mantissa &* 10 &+ UInt64(text[i] &- 0x30)
            i += 1
        }
        if i < text.count && text[i] == 0x2E {
            i += 1
            while i < text.count, text[i] &- 0x30 < 10 {
                sawDigit = true
                if mantissa != 0 || text[i] != 0x30 { digits += 1 }
                mantissa = mantissa &* 10 &+ UInt64(text[i] &- 0x30)
                exponent -= 1
                i += 1
            }
        }
        guard sawDigit, digits <= 15 else { return nil }
        if i < text.count && (text[i] == 0x65 || text[i] == 0x45) {
            i += 1
            var exponentNegative = false
            if i < text.count && (text[i] == 0x2D || text[i] == 0x2B) {
                exponentNegative = text[i] == 0x2D
                i += 1
            }
            var written = 0, exponentDigits = 0
            while i < text.count, text[i] &- 0x30 < 10 {
                written = written * 10 + Int(text[i] &- 0x30)
                exponentDigits += 1
                i += 1
                if written > 1000 { return nil }
            }
            guard exponentDigits > 0 else { return nil }
            exponent += exponentNegative ? -written : written
        }
        guard exponent >= -22 && exponent <= 22 else { return nil }
        let scaled = exponent >= 0 ? Double(mantissa) * powersOfTen[exponent] : Double(mantissa) / powersOfTen[-exponent]
        return (negative ? -scaled : scaled, i)
    }
}
