import ArgumentParser

/// `--column-blocks`: `auto` (the memory estimate decides) or a fixed count of column blocks per layer.
struct ColumnBlockChoice: ExpressibleByArgument, Equatable, CustomStringConvertible {
    /// nil: automatic.
    var count: Int?

    static let automatic = ColumnBlockChoice(count: nil)

    init(count: Int?) { self.count = count }

    init?(argument: String) {
        if argument == "auto" {
            count = nil
        } else if let n = Int(argument), n >= 1 {
            count = n
        } else {
            return nil
        }
    }

    var description: String { count.map(String.init) ?? "auto" }
    var defaultValueDescription: String { description }
}
