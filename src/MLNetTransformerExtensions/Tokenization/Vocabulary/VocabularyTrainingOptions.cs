namespace MLNetTransformerExtensions.Tokenization.Vocabulary;

/// <summary>The kind of sub-word vocabulary to train, named after the tokenizer that will use it.</summary>
public enum VocabularyKind
{
    /// <summary>
    /// BERT's WordPiece: <c>vocab.txt</c> read by <c>BertTokenizer</c>, with <c>##</c> marking a piece that continues a
    /// word. Text goes through BERT's basic tokenizer first (lower-casing and accent stripping unless cased,
    /// punctuation split off).
    /// </summary>
    WordPiece,

    /// <summary>
    /// GPT-2's byte-level BPE: <c>vocab.json</c> + <c>merges.txt</c> read by <c>GPT2Tokenizer</c>. The 256 bytes are the
    /// base alphabet, so any text encodes without an unknown token; <c>&lt;|endoftext|&gt;</c> takes the last id.
    /// </summary>
    ByteLevelBpe,
}

/// <summary>How <see cref="VocabularyTrainer"/> trains a vocabulary.</summary>
public sealed record VocabularyTrainingOptions
{
    /// <summary>WordPiece (BERT) or byte-level BPE (GPT-2).</summary>
    public VocabularyKind Kind { get; init; } = VocabularyKind.WordPiece;

    /// <summary>
    /// Tokens in the finished vocabulary, special tokens included (BERT uses 30522, GPT-2 50257). Training stops
    /// earlier, with fewer tokens, when no pair of symbols occurs <see cref="MinimumFrequency"/> times any more.
    /// </summary>
    public required int VocabularySize { get; init; }

    /// <summary>
    /// A pair of symbols is merged only if it occurs at least this often; for WordPiece, a character enters the
    /// alphabet only if it occurs this often. HuggingFace's <c>BertWordPieceTokenizer</c> and <c>ByteLevelBPETokenizer</c> use 2.
    /// </summary>
    public int MinimumFrequency { get; init; } = 2;

    /// <summary>WordPiece only: lower-case and strip accents (<c>do_lower_case</c>, as <c>bert-base-uncased</c>); false keeps case and accents.</summary>
    public bool LowerCase { get; init; } = true;

    /// <summary>
    /// WordPiece only: keep at most this many distinct characters, the most frequent ones (HuggingFace's
    /// <c>limit_alphabet</c>, 1000 by default). Words with a character outside the alphabet become <c>[UNK]</c> when
    /// tokenized, so they are left out of training.
    /// </summary>
    public int AlphabetLimit { get; init; } = 1000;

    /// <summary>The <c>model_max_length</c> written to tokenizer_config.json; null for 512 (WordPiece) or 1024 (byte-level BPE).</summary>
    public int? ModelMaxLength { get; init; }

    /// <summary>Checks every value and says which is wrong.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    public void Validate()
    {
        if (!Enum.IsDefined(Kind))
        {
            throw new ArgumentOutOfRangeException(nameof(Kind), Kind, "Kind must be WordPiece or ByteLevelBpe.");
        }

        var minimum = Kind == VocabularyKind.ByteLevelBpe ? VocabularyTrainer.ByteLevelMinimumSize : VocabularyTrainer.WordPieceSpecialTokens.Length + 1;
        if (VocabularySize < minimum)
        {
            throw new ArgumentOutOfRangeException(nameof(VocabularySize), VocabularySize, Kind == VocabularyKind.ByteLevelBpe
                ? $"VocabularySize {VocabularySize} is too small: a byte-level BPE vocabulary holds the 256 bytes and <|endoftext|>, so it needs at least {minimum}."
                : $"VocabularySize {VocabularySize} is too small: a WordPiece vocabulary holds 5 special tokens and the corpus's characters, so it needs more than 5.");
        }

        if (MinimumFrequency < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(MinimumFrequency), MinimumFrequency, "MinimumFrequency must be at least 1.");
        }

        if (AlphabetLimit < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(AlphabetLimit), AlphabetLimit, "AlphabetLimit must be at least 1.");
        }

        if (ModelMaxLength is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(ModelMaxLength), ModelMaxLength, "ModelMaxLength must be at least 1, or null for the kind's default.");
        }
    }
}

/// <summary>The stages of <see cref="VocabularyTrainer.Train"/>, in order.</summary>
public enum VocabularyTrainingStage
{
    /// <summary>Reading the input files and counting words; progress in bytes.</summary>
    CountingWords,

    /// <summary>Merging the most frequent pairs; progress in vocabulary entries.</summary>
    Merging,

    /// <summary>Writing the tokenizer files; done when reported.</summary>
    Writing,
}

/// <summary>Where training is.</summary>
/// <param name="Stage">The current stage.</param>
/// <param name="Completed">Bytes read (counting) or vocabulary entries so far (merging).</param>
/// <param name="Total">All input bytes (counting) or the vocabulary size asked for (merging).</param>
public readonly record struct VocabularyTrainingProgress(VocabularyTrainingStage Stage, long Completed, long Total);

/// <summary>What <see cref="VocabularyTrainer.Train"/> produced, and how fast.</summary>
/// <param name="OutputFolder">The folder holding the tokenizer files (full path).</param>
/// <param name="Kind">The vocabulary kind.</param>
/// <param name="VocabularySize">Tokens written, special tokens included: the size asked for, or fewer when the corpus ran out of pairs.</param>
/// <param name="AlphabetSize">Base symbols: 256 bytes, or the WordPiece characters (without their <c>##</c> forms).</param>
/// <param name="MergeCount">Pair merges performed (the lines of merges.txt for byte-level BPE).</param>
/// <param name="InputBytes">Bytes read from the input files.</param>
/// <param name="WordCount">Words (pre-tokens) counted in the text.</param>
/// <param name="DistinctWords">Distinct words among them.</param>
/// <param name="CountingTime">Time spent reading and counting words.</param>
/// <param name="MergingTime">Time spent merging pairs.</param>
/// <param name="TotalTime">Time from start to the files being in place.</param>
/// <param name="Files">The file names written into <paramref name="OutputFolder"/>.</param>
public sealed record VocabularyTrainingSummary(
    string OutputFolder,
    VocabularyKind Kind,
    int VocabularySize,
    int AlphabetSize,
    int MergeCount,
    long InputBytes,
    long WordCount,
    int DistinctWords,
    TimeSpan CountingTime,
    TimeSpan MergingTime,
    TimeSpan TotalTime,
    IReadOnlyList<string> Files)
{
    /// <summary>Throughput over the whole run: input megabytes (10^6 bytes) per second of <see cref="TotalTime"/>.</summary>
    public double MegabytesPerSecond => TotalTime.TotalSeconds > 0 ? InputBytes / 1e6 / TotalTime.TotalSeconds : 0;
}
