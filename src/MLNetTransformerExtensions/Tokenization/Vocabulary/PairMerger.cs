using System.Runtime.InteropServices;

namespace MLNetTransformerExtensions.Tokenization.Vocabulary;

/// <summary>
/// The merge loop of BPE training, as HuggingFace's <c>BpeTrainer</c> runs it: every distinct word is a sequence of
/// symbol ids weighted by its count; repeatedly the most frequent adjacent pair becomes a new symbol, until the
/// vocabulary is full or no pair is frequent enough. Ties go to the pair with the smaller ids (left, then right),
/// so the result depends only on the counts.
/// </summary>
/// <remarks>
/// Pair counts are kept up to date incrementally: a merge rewrites only the words that hold the pair and adjusts
/// the counts of the pairs around each occurrence. A max-heap orders pairs by count; an entry whose count went
/// down since it was pushed is corrected when it reaches the top, and a pair whose count went up is pushed again,
/// so the top entry, once checked, is always the true maximum.
/// </remarks>
internal sealed class PairMerger
{
    private readonly List<string> _tokens;
    private readonly Dictionary<string, int> _ids;
    private readonly string? _continuingPrefix;
    private readonly List<int[]> _words = [];
    private readonly List<int> _lengths = [];
    private readonly List<long> _counts = [];

    /// <param name="initialTokens">The vocabulary so far (special tokens, alphabet); new symbols are appended.</param>
    /// <param name="continuingPrefix">
    /// WordPiece's <c>##</c>: stripped from the right symbol when two are joined, so <c>a</c> + <c>##b</c> is <c>ab</c> and
    /// <c>##a</c> + <c>##b</c> is <c>##ab</c>. Null for byte-level BPE, whose symbols are simply concatenated.
    /// </param>
    public PairMerger(IEnumerable<string> initialTokens, string? continuingPrefix)
    {
        _tokens = [.. initialTokens];
        _ids = new Dictionary<string, int>(_tokens.Count * 4, StringComparer.Ordinal);
        for (var i = 0; i < _tokens.Count; i++)
        {
            _ids.Add(_tokens[i], i);
        }

        _continuingPrefix = continuingPrefix;
    }

    /// <summary>The vocabulary in id order.</summary>
    public IReadOnlyList<string> Tokens => _tokens;

    /// <summary>The id of a token of the initial vocabulary.</summary>
    public int IdOf(string token) => _ids[token];

    /// <summary>Adds a distinct word as symbol ids, with how often it occurs.</summary>
    public void AddWord(int[] symbols, long count)
    {
        _words.Add(symbols);
        _lengths.Add(symbols.Length);
        _counts.Add(count);
    }

    /// <summary>Merges pairs until the vocabulary holds <paramref name="targetSize"/> tokens or the best pair occurs fewer than <paramref name="minimumFrequency"/> times.</summary>
    /// <returns>The merges in the order they were made, as (left id, right id).</returns>
    public List<(int Left, int Right)> Merge(int targetSize, long minimumFrequency, Action<int>? onProgress, CancellationToken cancellationToken)
    {
        var pairCounts = new Dictionary<long, long>();
        var pairWords = new Dictionary<long, List<int>>();
        for (var w = 0; w < _words.Count; w++)
        {
            var symbols = _words[w];
            for (var i = 0; i + 1 < symbols.Length; i++)
            {
                var pair = Pack(symbols[i], symbols[i + 1]);
                CollectionsMarshal.GetValueRefOrAddDefault(pairCounts, pair, out _) += _counts[w];
                NoteWord(pairWords, pair, w);
            }
        }

        var queue = new PriorityQueue<long, PairRank>(pairCounts.Count, PairRank.Comparer);
        foreach (var (pair, count) in pairCounts)
        {
            queue.Enqueue(pair, new PairRank(count, pair));
        }

        var merges = new List<(int Left, int Right)>();
        var raised = new HashSet<long>();
        while (_tokens.Count < targetSize && queue.TryDequeue(out var best, out var rank))
        {
            var current = pairCounts.GetValueOrDefault(best);
            if (current != rank.Count)
            {
                if (current > 0)
                {
                    queue.Enqueue(best, new PairRank(current, best));
                }

                continue;
            }

            if (current < minimumFrequency)
            {
                break;
            }

            cancellationToken.ThrowIfCancellationRequested();
            var (left, right) = Unpack(best);
            var merged = Join(_tokens[left], _tokens[right]);
            if (!_ids.TryGetValue(merged, out var newId))
            {
                newId = _tokens.Count;
                _tokens.Add(merged);
                _ids.Add(merged, newId);
            }

            merges.Add((left, right));
            raised.Clear();
            foreach (var w in pairWords[best])
            {
                MergeInWord(w, left, right, newId, pairCounts, pairWords, raised);
            }

            pairCounts.Remove(best);
            pairWords.Remove(best);
            foreach (var pair in raised)
            {
                if (pairCounts.TryGetValue(pair, out var count) && count > 0)
                {
                    queue.Enqueue(pair, new PairRank(count, pair));
                }
            }

            onProgress?.Invoke(_tokens.Count);
        }

        return merges;
    }

    // Replaces every occurrence of (left, right) in word w, left to right, and moves the counts of the
    // neighbouring pairs: (prev, left) becomes (prev, new) and (right, next) becomes (new, next).
    private void MergeInWord(int w, int left, int right, int newId, Dictionary<long, long> pairCounts, Dictionary<long, List<int>> pairWords, HashSet<long> raised)
    {
        var symbols = _words[w];
        var length = _lengths[w];
        var count = _counts[w];
        var write = 0;
        var read = 0;
        var changed = false;
        while (read < length)
        {
            if (read + 1 < length && symbols[read] == left && symbols[read + 1] == right)
            {
                if (write > 0)
                {
                    var previous = symbols[write - 1];
                    Change(pairCounts, Pack(previous, left), -count);
                    Raise(pairCounts, pairWords, raised, Pack(previous, newId), count, w);
                }

                if (read + 2 < length)
                {
                    var next = symbols[read + 2];
                    Change(pairCounts, Pack(right, next), -count);
                    Raise(pairCounts, pairWords, raised, Pack(newId, next), count, w);
                }

                symbols[write++] = newId;
                read += 2;
                changed = true;
            }
            else
            {
                symbols[write++] = symbols[read++];
            }
        }

        if (changed)
        {
            _lengths[w] = write;
        }
    }

    private static void Change(Dictionary<long, long> pairCounts, long pair, long delta) =>
        CollectionsMarshal.GetValueRefOrAddDefault(pairCounts, pair, out _) += delta;

    private static void Raise(Dictionary<long, long> pairCounts, Dictionary<long, List<int>> pairWords, HashSet<long> raised, long pair, long delta, int word)
    {
        Change(pairCounts, pair, delta);
        NoteWord(pairWords, pair, word);
        raised.Add(pair);
    }

    // Words are visited one at a time, so a repeat of the same word is always the last entry.
    private static void NoteWord(Dictionary<long, List<int>> pairWords, long pair, int word)
    {
        ref var list = ref CollectionsMarshal.GetValueRefOrAddDefault(pairWords, pair, out _);
        list ??= [];
        if (list.Count == 0 || list[^1] != word)
        {
            list.Add(word);
        }
    }

    private string Join(string left, string right) =>
        _continuingPrefix is not null && right.StartsWith(_continuingPrefix, StringComparison.Ordinal)
            ? left + right[_continuingPrefix.Length..]
            : left + right;

    private static long Pack(int left, int right) => ((long)left << 32) | (uint)right;

    private static (int Left, int Right) Unpack(long pair) => ((int)(pair >> 32), (int)(uint)pair);

    /// <summary>Heap order: higher count first, then the smaller (left, right) pair.</summary>
    private readonly record struct PairRank(long Count, long Pair)
    {
        public static IComparer<PairRank> Comparer { get; } = Comparer<PairRank>.Create((a, b) =>
            a.Count != b.Count ? b.Count.CompareTo(a.Count) : a.Pair.CompareTo(b.Pair));
    }
}
