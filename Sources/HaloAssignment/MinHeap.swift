// Priority queues for the sweeps. They live in the solver's innermost loops, so they keep their storage in raw
// buffers (no copy-on-write checks per access) and are classes that free it on deinit.

/// A priority queue of `(key, id)` pairs for sweeps in ascending key order, where every key pushed is larger than
/// every key already taken out.
protocol SweepQueue {
    /// The smallest key in the queue if it is ≤ `limit`, else `nil`; the caller then moves on to a key ≤ `limit`.
    func smallestKey(notAbove limit: Int) -> Int?
    func push(_ key: Int, _ id: Int32)
    /// Removes every entry with key `key` (the smallest), appending their ids at `ids[count...]`.
    func popAll(_ key: Int, into ids: UnsafeMutablePointer<Int32>, count: inout Int)
}

/// A binary min-heap of `(key, id)` pairs ordered by key, then id (so pops are deterministic).
final class MinHeap<Key: Comparable & BitwiseCopyable> {
    private var keys: UnsafeMutablePointer<Key>
    private var ids: UnsafeMutablePointer<Int32>
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int = 16) {
        self.capacity = max(capacity, 1)
        keys = .allocate(capacity: self.capacity)
        ids = .allocate(capacity: self.capacity)
    }

    deinit {
        keys.deallocate()
        ids.deallocate()
    }

    var isEmpty: Bool { count == 0 }

    /// The smallest key, `nil` when empty.
    var minKey: Key? { count > 0 ? keys[0] : nil }

    @inline(__always)
    private func less(_ ka: Key, _ ia: Int32, _ kb: Key, _ ib: Int32) -> Bool {
        ka < kb || (!(kb < ka) && ia < ib)
    }

    func push(_ key: Key, _ id: Int32) {
        if count == capacity {
            let newCapacity = 2 * capacity
            let newKeys = UnsafeMutablePointer<Key>.allocate(capacity: newCapacity)
            let newIds = UnsafeMutablePointer<Int32>.allocate(capacity: newCapacity)
            newKeys.initialize(from: keys, count: count)
            newIds.initialize(from: ids, count: count)
            keys.deallocate()
            ids.deallocate()
            keys = newKeys
            ids = newIds
            capacity = newCapacity
        }
        var i = count
        count += 1
        while i > 0 {
            let parent = (i - 1) >> 1
            guard less(key, id, keys[parent], ids[parent]) else { break }
            keys[i] = keys[parent]
            ids[i] = ids[parent]
            i = parent
        }
        keys[i] = key
        ids[i] = id
    }

    /// Removes and returns the id with the smallest key.
    func pop() -> Int32 {
        precondition(count > 0, "pop from an empty heap")
        let top = ids[0]
        count -= 1
        let key = keys[count]
        let id = ids[count]
        var i = 0
        while true {
            let l = 2 * i + 1
            guard l < count else { break }
            var m = l
            if l + 1 < count && less(keys[l + 1], ids[l + 1], keys[l], ids[l]) { m = l + 1 }
            guard less(keys[m], ids[m], key, id) else { break }
            keys[i] = keys[m]
            ids[i] = ids[m]
            i = m
        }
        keys[i] = key
        ids[i] = id
        return top
    }
}

extension MinHeap: SweepQueue where Key == Int {
    func smallestKey(notAbove limit: Int) -> Int? {
        guard let k = minKey, k <= limit else { return nil }
        return k
    }

    func popAll(_ key: Int, into ids: UnsafeMutablePointer<Int32>, count: inout Int) {
        while let top = minKey, top == key {
            ids[count] = pop()
            count += 1
        }
    }
}

/// A bucket queue over the keys `0 ... maxKey`: O(1) per push and pop, plus a scan over an occupancy bitmap
/// (one bit per key) to find the next key. Each id may be queued at most once at a time.
final class BucketQueue: SweepQueue {
    private let head: UnsafeMutableBufferPointer<Int32>
    private let link: UnsafeMutableBufferPointer<Int32>
    private let occupied: UnsafeMutableBufferPointer<UInt64>
    /// No occupied key lies below `cursor`.
    private var cursor = 0

    init(maxKey: Int, idCount: Int) {
        head = .allocate(capacity: maxKey + 1)
        head.initialize(repeating: -1)
        link = .allocate(capacity: max(idCount, 1))
        link.initialize(repeating: -1)
        occupied = .allocate(capacity: maxKey / 64 + 1)
        occupied.initialize(repeating: 0)
    }

    deinit {
        head.deallocate()
        link.deallocate()
        occupied.deallocate()
    }

    func smallestKey(notAbove limit: Int) -> Int? {
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

    func push(_ key: Int, _ id: Int32) {
        link[Int(id)] = head[key]
        head[key] = id
        occupied[key >> 6] |= 1 << UInt64(key & 63)
    }

    func popAll(_ key: Int, into ids: UnsafeMutablePointer<Int32>, count: inout Int) {
        var id = head[key]
        head[key] = -1
        occupied[key >> 6] &= ~(1 << UInt64(key & 63))
        while id >= 0 {
            ids[count] = id
            count += 1
            id = link[Int(id)]
        }
    }
}

/// A queue for a handful of ids: one slot per id, scanned linearly. Each id may be queued at most once at a time.
final class LinearQueue: SweepQueue {
    private let keys: UnsafeMutableBufferPointer<Int>

    init(idCount: Int) {
        keys = .allocate(capacity: max(idCount, 1))
        keys.initialize(repeating: .max)
    }

    deinit {
        keys.deallocate()
    }

    func smallestKey(notAbove limit: Int) -> Int? {
        var smallest = Int.max
        for k in keys where k < smallest { smallest = k }
        return smallest <= limit && smallest < .max ? smallest : nil
    }

    func push(_ key: Int, _ id: Int32) {
        keys[Int(id)] = key
    }

    func popAll(_ key: Int, into ids: UnsafeMutablePointer<Int32>, count: inout Int) {
        for i in keys.indices where keys[i] == key {
            keys[i] = .max
            ids[count] = Int32(i)
            count += 1
        }
    }
}
