using System.Diagnostics;
using System.Text;
using static MLNetTransformerExtensions.Tokenization.HuggingFaceCharacterClasses;

namespace MLNetTransformerExtensions.Tokenization.Vocabulary;

/// <summary>
/// Trains a WordPiece (BERT) or byte-level BPE (GPT-2) vocabulary from text files and writes it in HuggingFace's
/// files, which <see cref="TransformerTokenizer.FromFolder"/>, Microsoft.ML.Tokenizers and transformers' slow
/// tokenizers all load. Microsoft.ML.Tokenizers can tokenize but not train, so this is the one sub-word algorithm
/// we write ourselves; it follows HuggingFace tokenizers' <c>BpeTrainer</c> (which its <c>WordPieceTrainer</c> wraps).
/// </summary>
/// <remarks>
/// <para>Words are counted exactly as the finished tokenizer will split text: BERT's basic tokenizer (clean-up,
/// lower-casing and accent stripping unless cased, punctuation and CJK characters split off) for WordPiece,
/// GPT-2's regex for byte-level BPE. Files are streamed in blocks and counted on all cores.</para>
/// <para>WordPiece: ids 0–4 are <c>[PAD] [UNK] [CLS] [SEP] [MASK]</c>; then the alphabet (the characters occurring
/// <see cref="VocabularyTrainingOptions.MinimumFrequency"/> times, at most
/// <see cref="VocabularyTrainingOptions.AlphabetLimit"/>, by code point); then the <c>##</c> form of each that can
/// continue a word (all but punctuation and CJK ideographs, which are always words of their own); then merged
/// pieces. Byte-level BPE: the 256 byte symbols in GPT-2's order, merged pieces, and <c>&lt;|endoftext|&gt;</c> last.</para>
/// <para>Merging picks the most frequent adjacent pair, ties going to the pair of smaller ids, so the same input
/// gives byte-identical files. It stops at the size asked for, or earlier when no pair occurs
/// <see cref="VocabularyTrainingOptions.MinimumFrequency"/> times (a small corpus), leaving a smaller vocabulary.</para>
/// </remarks>
/// <example>
/// <code>
/// var summary = VocabularyTrainer.Train(["books/a.txt", "books/b.txt"], "my-tokenizer",
///     new VocabularyTrainingOptions { Kind = VocabularyKind.WordPiece, VocabularySize = 8000 });
/// var tokenizer = TransformerTokenizer.FromFolder(summary.OutputFolder);
/// </code>
/// </example>
public static class VocabularyTrainer
{
    internal const string EndOfText = "<|endoftext|>";
    internal const string ContinuingSubwordPrefix = "##";
    internal const int ByteLevelMinimumSize = 257;

    // WordPieceTokenizer's MaxInputCharsPerWord as TransformerTokenizer sets it: longer words become [UNK].
    internal const int MaxWordPieceChars = 100;

    internal static readonly string[] WordPieceSpecialTokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

    /// <summary>Trains a vocabulary on <paramref name="inputFiles"/> and writes its tokenizer files into <paramref name="outputFolder"/>.</summary>
    /// <param name="inputFiles">UTF-8 text files (a byte-order mark is allowed); each is read as one document.</param>
    /// <param name="outputFolder">
    /// Where the files go (created if missing): <c>vocab.txt</c> for WordPiece, <c>vocab.json</c> + <c>merges.txt</c> for
    /// byte-level BPE, and <c>tokenizer_config.json</c> + <c>special_tokens_map.json</c>. They appear only once complete;
    /// tokenizer files of another kind already in the folder are removed.
    /// </param>
    /// <param name="options">Kind, size and frequencies.</param>
    /// <param name="progress">Receives the stage and how far it is.</param>
    /// <param name="cancellationToken">Stops training; nothing is written.</param>
    /// <returns>Sizes, counts and timings of the run.</returns>
    /// <exception cref="ArgumentException">No input files, or an input is a folder.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range, or the vocabulary size cannot hold this corpus's alphabet (the message gives the minimum).</exception>
    /// <exception cref="FileNotFoundException">An input file does not exist.</exception>
    /// <exception cref="IOException">An input file cannot be read, or the output cannot be written.</exception>
    /// <exception cref="InvalidDataException">The input holds no words, or no character frequent enough.</exception>
    public static VocabularyTrainingSummary Train(
        IReadOnlyList<string> inputFiles,
        string outputFolder,
        VocabularyTrainingOptions options,
        IProgress<VocabularyTrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputFiles);
        ArgumentException.ThrowIfNullOrEmpty(outputFolder);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var inputBytes = CheckInputs(inputFiles);

        var clock = Stopwatch.StartNew();
        var wordPiece = options.Kind == VocabularyKind.WordPiece;
        var tally = WordCounter.Count(
            inputFiles, wordPiece ? WordSplitter.WordPiece(options.LowerCase) : WordSplitter.ByteLevel(), progress, cancellationToken);
        if (tally.Counts.Count == 0)
        {
            throw new InvalidDataException(
                $"The input ({Describe(inputFiles)}, {inputBytes} bytes) holds no words to train on: it is empty or only whitespace.");
        }

        // Sorted, so that word indices (and with them every later step) do not depend on thread timing.
        var words = tally.Counts.OrderBy(w => w.Key, StringComparer.Ordinal).ToList();
        var countingTime = clock.Elapsed;

        var target = wordPiece ? options.VocabularySize : options.VocabularySize - 1;
        var (merger, alphabetSize) = wordPiece
            ? WordPieceMerger(words, options, inputFiles)
            : ByteLevelMerger(words);
        var lastReported = 0;
        var merges = merger.Merge(target, options.MinimumFrequency, size =>
        {
            if (progress is not null && size - lastReported >= 256)
            {
                lastReported = size;
                progress.Report(new VocabularyTrainingProgress(VocabularyTrainingStage.Merging, size, options.VocabularySize));
            }
        }, cancellationToken);
        var mergingTime = clock.Elapsed - countingTime;

        progress?.Report(new VocabularyTrainingProgress(VocabularyTrainingStage.Writing, 0, 1));
        var tokens = merger.Tokens;
        var files = wordPiece
            ? VocabularyFiles.WordPiece(tokens, options.LowerCase, options.ModelMaxLength ?? 512)
            : VocabularyFiles.ByteLevelBpe([.. tokens, EndOfText], merges.Select(m => (tokens[m.Left], tokens[m.Right])), options.ModelMaxLength ?? 1024);
        cancellationToken.ThrowIfCancellationRequested();
        VocabularyFiles.Publish(outputFolder, files);

        return new VocabularyTrainingSummary(
            Path.GetFullPath(outputFolder),
            options.Kind,
            wordPiece ? tokens.Count : tokens.Count + 1,
            alphabetSize,
            merges.Count,
            inputBytes,
            tally.Total,
            words.Count,
            countingTime,
            mergingTime,
            clock.Elapsed,
            [.. files.Keys.Order(StringComparer.Ordinal)]);
    }

    /// <summary>
    /// Special tokens, the alphabet and its <c>##</c> forms, and each word as characters: the first as itself, the
    /// rest in their <c>##</c> form. Words WordPiece would turn into <c>[UNK]</c> anyway (a character outside the
    /// alphabet, longer than 100 characters) are left out.
    /// </summary>
    private static (PairMerger Merger, int AlphabetSize) WordPieceMerger(List<KeyValuePair<string, long>> words, VocabularyTrainingOptions options, IReadOnlyList<string> inputFiles)
    {
        var characterCounts = new Dictionary<int, long>();
        foreach (var (word, count) in words)
        {
            foreach (var rune in word.EnumerateRunes())
            {
                characterCounts[rune.Value] = characterCounts.GetValueOrDefault(rune.Value) + count;
            }
        }

        var alphabet = characterCounts
            .Where(c => c.Value >= options.MinimumFrequency)
            .OrderByDescending(c => c.Value).ThenBy(c => c.Key)
            .Take(options.AlphabetLimit)
            .Select(c => new Rune(c.Key))
            .Order()
            .ToList();
        if (alphabet.Count == 0)
        {
            throw new InvalidDataException(
                $"No character occurs {options.MinimumFrequency} times in the input ({Describe(inputFiles)}): give more text or lower the minimum frequency.");
        }

        var continuing = alphabet.Where(r => !IsBertPunctuation(r) && !IsCjkIdeograph(r.Value)).ToList();
        var initial = WordPieceSpecialTokens
            .Concat(alphabet.Select(r => r.ToString()))
            .Concat(continuing.Select(r => ContinuingSubwordPrefix + r))
            .ToList();
        if (initial.Count > options.VocabularySize)
        {
            throw new ArgumentOutOfRangeException(nameof(options.VocabularySize), options.VocabularySize,
                $"VocabularySize {options.VocabularySize} cannot hold this corpus's alphabet: it needs at least {initial.Count} " +
                $"({WordPieceSpecialTokens.Length} special tokens + {alphabet.Count} characters + {continuing.Count} '##' forms). " +
                $"Ask for {initial.Count} or more, or lower AlphabetLimit.");
        }

        var merger = new PairMerger(initial, ContinuingSubwordPrefix);
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var id = 0; id < initial.Count; id++)
        {
            ids[initial[id]] = id;
        }

        var symbols = new List<int>();
        foreach (var (word, count) in words)
        {
            if (word.Length > MaxWordPieceChars)
            {
                continue;
            }

            symbols.Clear();
            foreach (var rune in word.EnumerateRunes())
            {
                var piece = symbols.Count == 0 ? rune.ToString() : ContinuingSubwordPrefix + rune;
                if (!ids.TryGetValue(piece, out var id))
                {
                    symbols.Clear();
                    break;
                }

                symbols.Add(id);
            }

            if (symbols.Count >= 2)
            {
                merger.AddWord([.. symbols], count);
            }
        }

        return (merger, alphabet.Count);
    }

    /// <summary>The 256 byte symbols, ordered by the character that spells them (GPT-2's order), and each word as its UTF-8 bytes.</summary>
    private static (PairMerger Merger, int AlphabetSize) ByteLevelMerger(List<KeyValuePair<string, long>> words)
    {
        var byteChars = ByteLevelAlphabet.CharOfByte;
        var alphabet = byteChars.Order().Select(c => c.ToString()).ToList();
        var merger = new PairMerger(alphabet, continuingPrefix: null);
        var idOfByte = new int[256];
        for (var b = 0; b < 256; b++)
        {
            idOfByte[b] = merger.IdOf(byteChars[b].ToString());
        }

        foreach (var (word, count) in words)
        {
            var bytes = Encoding.UTF8.GetBytes(word);
            if (bytes.Length >= 2)
            {
                merger.AddWord(Array.ConvertAll(bytes, b => idOfByte[b]), count);
            }
        }

        return (merger, alphabet.Count);
    }

    // Fails before any work on a missing or unreadable file, naming it; returns the total size.
    private static long CheckInputs(IReadOnlyList<string> inputFiles)
    {
        if (inputFiles.Count == 0)
        {
            throw new ArgumentException("No input files: give at least one text file to train on.", nameof(inputFiles));
        }

        long bytes = 0;
        foreach (var file in inputFiles)
        {
            if (string.IsNullOrEmpty(file))
            {
                throw new ArgumentException("An input file name is empty.", nameof(inputFiles));
            }

            if (Directory.Exists(file))
            {
                throw new ArgumentException($"Input '{file}' is a folder; give the text files in it (e.g. {Path.Combine(file, "*.txt")}).", nameof(inputFiles));
            }

            if (!File.Exists(file))
            {
                throw new FileNotFoundException($"Input file '{file}' does not exist.", file);
            }

            try
            {
                using var stream = File.OpenRead(file);
                bytes += stream.Length;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"Cannot read input file '{file}': {e.Message}", e);
            }
        }

        return bytes;
    }

    private static string Describe(IReadOnlyList<string> files) =>
        files.Count <= 3 ? string.Join(", ", files.Select(Path.GetFileName)) : $"{files.Count} files";
}
