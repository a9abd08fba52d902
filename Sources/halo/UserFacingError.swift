import ArgumentParser
import Foundation
import HaloTraining

/// Foundation's errors print as `Error Domain=NSCocoaErrorDomain Code=4 "…" UserInfo={…}` and an error type without a
/// description prints as its Swift type and case names; neither tells a user what to do. The CLI passes every
/// error it reports through `UserFacingError.readable`, which keeps Halo's own errors (each says which file, field
/// or option is wrong) and replaces Foundation's by their localized sentence.
struct UserFacingError: Error, CustomStringConvertible {
    let description: String

    /// `error` itself when it explains itself; otherwise a `UserFacingError` with Foundation's sentence for it.
    static func readable(_ error: any Error) -> any Error {
        if let failure = error as? RankFailure {
            return UserFacingError(description: "rank \(failure.rank) failed: \(describe(failure.underlying))")
        }
        return isFoundationError(error) ? UserFacingError(description: error.localizedDescription) : error
    }

    /// The text of `error` as a user should read it.
    static func describe(_ error: any Error) -> String {
        String(describing: readable(error))
    }

    /// Errors bridged from Foundation or the C library, which have no description of their own.
    private static func isFoundationError(_ error: any Error) -> Bool {
        if error is CocoaError || error is POSIXError || error is URLError { return true }
        // A plain NSError of a Foundation domain (Swift errors bridged to NSError take their type's name as domain).
        let domain = (error as NSError).domain
        return domain == NSCocoaErrorDomain || domain == NSPOSIXErrorDomain || domain == NSURLErrorDomain
    }

    /// Checks before any work that `--json-out`'s file can be written, as `halo train` does.
    static func checkOutputFile(_ path: String, option: String = "--json-out") throws {
        do {
            _ = try ReportFile(path: path)
        } catch let error as ReportFileError {
            throw ValidationError("\(option) \(error.path): \(error.reason)")
        }
    }

    /// Writes `data` to the file at `path` atomically, a failure naming the option and the path.
    static func write(_ data: Data, to path: String, option: String = "--json-out") throws {
        // The report's write: temporary file, fsync, rename, and a link at `path` keeps pointing at the file.
        do {
            try ReportFile(path: path).write(data)
        } catch let error as ReportFileError {
            throw UserFacingError(description: "\(option) \(path): \(error.reason)")
        }
    }
}
