using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.ML.Tokenizers;
using static MLNetTransformerExtensions.Tokenization.HuggingFaceCharacterClasses;

namespace MLNetTransformerExtensions.Tokenization.Vocabulary;

/// <summary>Word counts of a corpus: each distinct pre-token with how often it occurs.</summary>
internal sealed class WordTally
{
    private readonly Dictionary<string, long> _counts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    public WordTally() => _lookup = _counts.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>Distinct words and their counts.</summary>
    public IReadOnlyDictionary<string, long> Counts => _counts;

    /// <summary>All words counted, repeats included.</summary>
    public long Total { get; private set; }

    /// <summary>Counts one occurrence; the string is only allocated the first time a word is seen.</summary>
    public void Add(ReadOnlySpan<char> word)
    {
        CollectionsMarshal.GetValueRefOrAddDefault(_lookup, word, out _)++;
        Total++;
    }

    public void AddAll(WordTally other)
    {
        foreach (var (word, count) in other._counts)
        {
            CollectionsMarshal.GetValueRefOrAddDefault(_counts, word, out _) += count;
        }

        Total += other.Total;
    }
}

/// <summary>
/// Splits raw text into the words the trained vocabulary's tokenizer will see, so training counts exactly what
/// tokenizing later looks up: special tokens written in the text are set aside first (as
/// <see cref="AddedTokenSplitter"/> does before the model), then the rest goes through the tokenizer's own
/// normalizer and pre-tokenizer.
/// </summary>
internal abstract class WordSplitter
{
    private readonly string[] _specialTokens;
    private readonly AddedTokenSplitter _splitter;

    protected WordSplitter(IReadOnlyList<string> specialTokens, bool stripAroundSpecialTokens)
    {
        _specialTokens = [.. specialTokens];
        _splitter = new AddedTokenSplitter(specialTokens.Select((t, i) => new AddedToken(t, i, stripAroundSpecialTokens, stripAroundSpecialTokens)));
    }

    /// <summary>BERT's basic tokenizer, configured as tokenizer_config.json will say (<c>do_lower_case</c>, <c>strip_accents</c> following it).</summary>
    public static WordSplitter WordPiece(bool lowerCase) => new BertWords(lowerCase);

    /// <summary>GPT-2's regex split (<see cref="RobertaPreTokenizer"/>), which the byte-level BPE tokenizer applies before mapping bytes.</summary>
    public static WordSplitter ByteLevel() => new Gpt2Words();

    public void CountWords(string text, WordTally tally)
    {
        // The splitter looks every character up; skip it for the usual block that holds no special token.
        if (!_specialTokens.Any(t => text.Contains(t, StringComparison.Ordinal)))
        {
            CountPlainText(text.AsSpan(), tally);
            return;
        }

        var segments = new List<TextSegment>();
        _splitter.Split(text, segments);
        foreach (var segment in segments.Where(s => s.TokenId < 0))
        {
            CountPlainText(text.AsSpan(segment.Start, segment.Length), tally);
        }
    }

    protected abstract void CountPlainText(ReadOnlySpan<char> text, WordTally tally);

    private sealed class BertWords(bool lowerCase) : WordSplitter(VocabularyTrainer.WordPieceSpecialTokens, stripAroundSpecialTokens: true)
    {
        private readonly BertBasicNormalizer _normalizer = new(cleanText: true, tokenizeChineseChars: true, lowerCase: lowerCase, stripAccents: lowerCase);
        private readonly BertBasicPreTokenizer _preTokenizer = new(splitOnPunctuation: true);

        protected override void CountPlainText(ReadOnlySpan<char> text, WordTally tally)
        {
            var normalized = _normalizer.Normalize(text);
            foreach (var (offset, length) in _preTokenizer.PreTokenize(normalized))
            {
                tally.Add(normalized.AsSpan(offset, length));
            }
        }
    }

    private sealed class Gpt2Words() : WordSplitter([VocabularyTrainer.EndOfText], stripAroundSpecialTokens: false)
    {
        protected override void CountPlainText(ReadOnlySpan<char> text, WordTally tally)
        {
            foreach (var (offset, length) in RobertaPreTokenizer.Instance.PreTokenize(text))
            {
                tally.Add(text.Slice(offset, length));
            }
        }
    }
}

/// <summary>
/// Streams text files in blocks of about a million characters and counts their words on all cores, never holding
/// more than a few blocks. Blocks are cut where neither pre-tokenizer can join text across the cut, so the counts
/// are those of whole files, whatever the block size or thread count.
/// </summary>
internal static class WordCounter
{
    public const int DefaultBlockChars = 1 << 20;

    // A block without a safe cut grows up to this many times its size; past that (16 M characters without a
    // space-led word or a line break between words) it is cut at its end, keeping surrogate pairs whole.
    private const int MaxGrowth = 16;

    private readonly record struct TextBlock(string Text, long BytesRead);

    public static WordTally Count(
        IReadOnlyList<string> files, WordSplitter splitter, IProgress<VocabularyTrainingProgress>? progress, CancellationToken cancellationToken,
        int blockChars = DefaultBlockChars)
    {
        var totalBytes = files.Sum(f => new FileInfo(f).Length);
        var total = new WordTally();
        var gate = new object();
        try
        {
            Parallel.ForEach(
                Partitioner.Create(ReadBlocks(files, blockChars), EnumerablePartitionerOptions.NoBuffering),
                new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount, CancellationToken = cancellationToken },
                () => new WordTally(),
                (block, _, tally) =>
                {
                    splitter.CountWords(block.Text, tally);
                    progress?.Report(new VocabularyTrainingProgress(VocabularyTrainingStage.CountingWords, block.BytesRead, totalBytes));
                    return tally;
                },
                tally =>
                {
                    lock (gate)
                    {
                        total.AddAll(tally);
                    }
                });
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }

        return total;
    }

    private static IEnumerable<TextBlock> ReadBlocks(IReadOnlyList<string> files, int blockChars)
    {
        var buffer = new char[blockChars];
        long bytesBefore = 0;
        foreach (var file in files)
        {
            using var reader = Open(file);
            var filled = 0;
            while (true)
            {
                var read = Read(reader, file, buffer, filled);
                filled += read;
                var endOfFile = filled < buffer.Length;
                if (filled == 0)
                {
                    break;
                }

                var cut = endOfFile ? filled : FindCut(buffer, filled);
                if (cut < 0 && buffer.Length < blockChars * MaxGrowth)
                {
                    // No safe cut (a very long word or whitespace run): read on in a larger buffer.
                    Array.Resize(ref buffer, buffer.Length * 2);
                    continue;
                }

                if (cut < 0)
                {
                    cut = char.IsHighSurrogate(buffer[filled - 1]) ? filled - 1 : filled;
                }

                yield return new TextBlock(new string(buffer, 0, cut), bytesBefore + reader.BaseStream.Position);
                Array.Copy(buffer, cut, buffer, 0, filled - cut);
                filled -= cut;
                if (endOfFile)
                {
                    break;
                }
            }

            bytesBefore += reader.BaseStream.Length;
        }
    }

    private static StreamReader Open(string file)
    {
        try
        {
            return new StreamReader(file, Encoding.UTF8, detectEncodingFromByteOrderMarks: true,
                new FileStreamOptions { Access = FileAccess.Read, Share = FileShare.Read, Options = FileOptions.SequentialScan, BufferSize = 1 << 16 });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Cannot read input file '{file}': {e.Message}", e);
        }
    }

    private static int Read(StreamReader reader, string file, char[] buffer, int start)
    {
        try
        {
            return reader.ReadBlock(buffer, start, buffer.Length - start);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Cannot read input file '{file}': {e.Message}", e);
        }
    }

    /// <summary>
    /// The last place in the second half of the buffer where a cut changes no word: before a space that follows a
    /// non-space (GPT-2 glues a space to the word after it), or after a line break between two non-spaces. Neither
    /// BERT's split nor GPT-2's regex (whose only look-ahead is in whitespace runs) joins text across such a cut.
    /// Returns -1 when there is none.
    /// </summary>
    internal static int FindCut(char[] buffer, int length)
    {
        for (var p = length - 1; p >= Math.Max(2, length / 2); p--)
        {
            if (buffer[p] == ' ' && !IsSpace(buffer[p - 1]))
            {
                return p;
            }

            if (buffer[p - 1] == '\n' && !IsSpace(buffer[p]) && !IsSpace(buffer[p - 2]))
            {
                return p;
            }
        }

        return -1;
    }

    // Whitespace to either tokenizer: .NET's \s (char.IsWhiteSpace) or Python's str.isspace.
    private static bool IsSpace(char c) => IsPythonWhitespace(c);
}
