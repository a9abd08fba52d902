/// A priority queue of `(key, id)` pairs for sweeps in ascending key order, where every key pushed is larger than
/// every key already taken out.
protocol SweepQueue {
    /// The smallest key in the queue if it is ≤ `limit`, else `nil`; the caller then moves on to a key ≤ `limit`.
    mutating func smallestKey(notAbove limit: Int) -> Int?
    mutating func push(_ key: Int, _ id: Int32)
    /// Removes every entry with key `key` (the smallest), appending their ids to `ids`.
    mutating func popAll(_ key: Int, into ids: inout [Int])
}

/// A binary min-heap of `(key, id)` pairs ordered by key, then id (so pops are deterministic).
struct MinHeap<Key: Comparable> {
    private var keys: [Key] = []
    private var ids: [Int32] = []

    init() {}

    var isEmpty: Bool { keys.isEmpty }

    /// The smallest key, `nil` when empty.
    var minKey: Key? { keys.first }

    mutating func removeAll() {
        keys.removeAll(keepingCapacity: true)
        ids.removeAll(keepingCapacity: true)
    }

    @inline(__always)
    private func less(_ i: Int, _ j: Int) -> Bool {
        keys[i] < keys[j] || (!(keys[j] < keys[i]) && ids[i] < ids[j])
    }

    mutating func push(_ key: Key, _ id: Int32) {
        keys.append(key)
        ids.append(id)
        var i = keys.count - 1
        while i > 0 {
            let parent = (i - 1) >> 1
            guard less(i, parent) else { break }
            keys.swapAt(i, parent)
            ids.swapAt(i, parent)
            i = parent
        }
    }

    /// Removes and returns the id with the smallest key.
    mutating func pop() -> Int32 {
        let top = ids[0]
        let last = keys.count - 1
        keys.swapAt(0, last)
        ids.swapAt(0, last)
        keys.removeLast()
        ids.removeLast()
        var i = 0
        let n = keys.count
        while true {
            let l = 2 * i + 1
            guard l < n else { break }
            var m = l
            if l + 1 < n && less(l + 1, l) { m = l + 1 }
            guard less(m, i) else { break }
            keys.swapAt(i, m)
            ids.swapAt(i, m)
            i = m
        }
        return top
    }
}

extension MinHeap: SweepQueue where Key == Int {
    mutating func smallestKey(notAbove limit: Int) -> Int? {
        guard let k = minKey, k <= limit else { return nil }
        return k
    }

    mutating func popAll(_ key: Int, into ids: inout [Int]) {
        while let top = minKey, top == key { ids.append(Int(pop())) }
    }
}

/// A bucket queue over the keys `0 ... maxKey`: O(1) per push and pop, plus a scan over an occupancy bitmap
/// (one bit per key) to find the next key. Each id may be queued at most once at a time.
struct BucketQueue: SweepQueue {
    private var head: [Int32]
    private var link: [Int32]
    private var occupied: [UInt64]
    /// No occupied key lies below `cursor`.
    private var cursor = 0

    init(maxKey: Int, idCount: Int) {
        head = [Int32](repeating: -1, count: maxKey + 1)
        link = [Int32](repeating: -1, count: idCount)
        occupied = [UInt64](repeating: 0, count: maxKey / 64 + 1)
    }

    mutating func smallestKey(notAbove limit: Int) -> Int? {
        let end = min(limit, head.count - 1)
        var word = cursor >> 6
        var bits = occupied[word] & (~0 << UInt64(cursor & 63))
        while bits == 0 {
            word += 1
            if word << 6 > end { break }
            bits = occupied[word]
        }
        if bits != 0 {
            let key = word << 6 + bits.trailingZeroBitCount
            if key <= end {
                cursor = key
                return key
            }
        }
        cursor = max(cursor, end)
        return nil
    }

    mutating func push(_ key: Int, _ id: Int32) {
        link[Int(id)] = head[key]
        head[key] = id
        occupied[key >> 6] |= 1 << UInt64(key & 63)
    }

    mutating func popAll(_ key: Int, into ids: inout [Int]) {
        var id = head[key]
        head[key] = -1
        occupied[key >> 6] &= ~(1 << UInt64(key & 63))
        while id >= 0 {
            ids.append(Int(id))
            id = link[Int(id)]
        }
    }
}
