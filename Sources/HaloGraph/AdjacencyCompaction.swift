/// Sorts every row of a CSR adjacency (row `v` is `entries[pointers[v] ..< pointers[v+1]]`) and drops repeated
/// entries, compacting in place; returns the new row pointers. `entries` shrinks to the kept entries.
///
/// Shared by graph construction (duplicate edges) and METIS input (the union of in- and out-lists).
public func sortAndDeduplicateRows(pointers: [Int], entries: inout [Int32]) -> [Int] {
    let rows = pointers.count - 1
    var compact = [Int](repeating: 0, count: rows + 1)
    var write = 0
    entries.withUnsafeMutableBufferPointer { buf in
        for v in 0..<rows {
            let lo = pointers[v], hi = pointers[v + 1]
            if hi - lo > 1 {
                var slice = UnsafeMutableBufferPointer(rebasing: buf[lo..<hi])
                slice.sort()
            }
            var previous: Int32 = -1
            for e in lo..<hi where buf[e] != previous {
                previous = buf[e]
                buf[write] = buf[e]
                write += 1
            }
            compact[v + 1] = write
        }
    }
    entries.removeLast(entries.count - write)
    return compact
}
