import Foundation
import HaloTensor

/// Calibrations kept between runs: one JSON file per key (`calibration-<key hash>.json`) in a folder under the
/// user's cache directory, so a run measures this host once per binary and thread count and later runs (and a
/// host's other users of the same home folder, e.g. ranks on several machines) reuse the rates of their own key.
///
/// A file is replaced atomically (`AtomicFile`), so a reader never sees a torn one. A file that cannot be read,
/// does not decode, holds another key (a hash collision or a hand-edited file) or holds rates that are not
/// positive finite numbers is reported through `warn` and measured again, never trusted and never fatal; a
/// cache that cannot be written leaves the run with its fresh rates and a warning.
public struct CalibrationCache: Sendable {
    /// The folder the files are in.
    public var directory: String

    public init(directory: String) { self.directory = directory }

    /// `$XDG_CACHE_HOME/halo`, else `$HOME/.cache/halo` (the XDG default), else a folder in the temporary directory.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") { return xdg + "/halo" }
        if let home = environment["HOME"], !home.isEmpty { return home + "/.cache/halo" }
        return NSTemporaryDirectory() + "halo-cache"
    }

    /// The file holding `key`'s calibration.
    public func file(for key: CalibrationKey) -> String { "\(directory)/calibration-\(key.fileStem).json" }

    /// What the cache holds for a key.
    public enum Lookup: Sendable, Equatable {
        case found(CalibrationRecord)
        case missing
        /// The file exists but cannot be used; the reason names the file and what is wrong.
        case unusable(String)
    }

    public func lookup(_ key: CalibrationKey) -> Lookup {
        let path = file(for: key)
        guard FileManager.default.fileExists(atPath: path) else { return .missing }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            return .unusable("\(path): cannot be read (\(error.localizedDescription))")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let record: CalibrationRecord
        do { record = try decoder.decode(CalibrationRecord.self, from: data) } catch {
            return .unusable("\(path): not a calibration file (\(Self.describe(error)))")
        }
        guard record.key == key else {
            return .unusable("\(path): key: expected this host's \(key.host.summary), \(key.threads) threads, \(key.build), found \(record.key.host.summary), \(record.key.threads) threads, \(record.key.build)")
        }
        if let invalid = record.rates.invalidRate {
            return .unusable("\(path): rates.\(invalid.field): expected \(invalid.expected)")
        }
        var cached = record
        cached.origin = .cached
        cached.cacheFile = path
        return .found(cached)
    }

    /// Writes `record` as `record.key`'s file, creating the folder if needed.
    public func store(_ record: CalibrationRecord) throws {
        let path = file(for: record.key)
        var stored = record
        stored.origin = .measured
        stored.cacheFile = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data = try encoder.encode(stored)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CalibrationCacheError(path: directory, reason: "cannot create the folder (\(error.localizedDescription))")
        }
        do {
            try AtomicFile.replace(path, in: directory, with: data,
                                   temporary: "\(directory)/.calibration-\(record.key.fileStem).json.tmp-\(getpid())")
        } catch {
            throw CalibrationCacheError(path: path, reason: error.reason)
        }
    }

    /// `key`'s calibration: the cached one unless `refresh`, else (or when there is none usable) `measure()`'s,
    /// timed and stored for later runs. Problems with the file are passed to `warn`, and only cost a measurement.
    public func calibration(
        for key: CalibrationKey, refresh: Bool, warn: (String) -> Void, measure: () -> KernelRates
    ) -> CalibrationRecord {
        if !refresh {
            switch lookup(key) {
            case .found(let record): return record
            case .missing: break
            case .unusable(let reason): warn("ignoring the host calibration cache: \(reason); measuring again")
            }
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let rates = measure()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        var record = CalibrationRecord(origin: .measured, key: key, rates: rates, measurementSeconds: seconds,
                                       measuredAt: ISO8601DateFormatter().string(from: Date()))
        do {
            try store(record)
            record.cacheFile = file(for: key)
        } catch {
            warn("could not save the host calibration: \(error); later runs will measure again")
        }
        return record
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "missing \((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
             DecodingError.dataCorrupted(let context):
            let at = context.codingPath.map(\.stringValue).joined(separator: ".")
            return at.isEmpty ? context.debugDescription : "\(at): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }
}

/// A calibration file or folder that cannot be written.
public struct CalibrationCacheError: Error, CustomStringConvertible {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
}
