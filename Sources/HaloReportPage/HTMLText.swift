/// Text placed in the page: everything that comes from a report (dataset paths, stop reasons, file names) goes
/// through here, so a name with `<`, `&` or a quote cannot break the markup or inject any.
enum HTMLText {
    /// `text` safe inside an element or a quoted attribute (HTML and SVG alike).
    static func escaped(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }
}
