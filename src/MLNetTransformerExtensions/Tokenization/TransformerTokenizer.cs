using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.Tokenizers;
using MLNetTransformerExtensions.Checkpoints;
using static MLNetTransformerExtensions.Tokenization.HuggingFaceCharacterClasses;

namespace MLNetTransformerExtensions.Tokenization;

/// <summary>
/// A HuggingFace tokenizer read from a model folder, producing exactly the ids of transformers' slow tokenizers
/// (<c>AutoTokenizer.from_pretrained(dir, use_fast=False)</c>, transformers 4.31): BERT and DistilBERT WordPiece,
/// RoBERTa, BART and GPT-2 byte-level BPE, T5 SentencePiece unigram. The sub-word algorithms are Microsoft.ML.Tokenizers'; this class adds what
/// HuggingFace does around them: atomic special and added tokens, special-token templates, <c>longest_first</c>
/// truncation and padding.
/// </summary>
/// <remarks>
/// <para>Encoding mirrors <c>tokenizer(text, text_pair, truncation=True, max_length=n)</c>: added and special tokens
/// written in the text (<c>[MASK]</c>, <c>&lt;mask&gt;</c>, <c>&lt;|endoftext|&gt;</c>) are matched exactly and never
/// split, honouring their <c>lstrip</c>/<c>rstrip</c> flags (RoBERTa's <c>&lt;mask&gt;</c> swallows the space before it);
/// the rest goes through the model's normalizer, pre-tokenizer and WordPiece or BPE.</para>
/// <para>Instances are immutable and safe to share between threads.</para>
/// </remarks>
/// <example>
/// <code>
/// var tokenizer = TransformerTokenizer.FromFolder("models/bert-tiny");
/// EncodedText one = tokenizer.Encode("How old are you?", "I am six.", maxLength: 32);
/// EncodedBatch batch = tokenizer.EncodeBatch(["a first text", "a second"], textPairs: null, maxLength: 32);
/// </code>
/// </example>
public sealed class TransformerTokenizer
{
    private readonly Tokenizer _model;
    private readonly IReadOnlyDictionary<string, int> _vocabulary;
    private readonly string[] _idToToken;
    private readonly AddedTokenSplitter _addedTokens;
    private readonly SpecialTokensTemplate _template;
    private readonly PrefixSpaceRule _prefixSpace;
    private readonly IReadOnlyDictionary<string, string> _specialTokens;
    private readonly IReadOnlyDictionary<string, byte[]> _files;

    internal TransformerTokenizer(TokenizerSetup setup)
    {
        Family = setup.Family;
        ModelType = setup.ModelType;
        _model = setup.Model;
        _vocabulary = setup.Vocabulary;
        _addedTokens = new AddedTokenSplitter(setup.AddedTokens);
        _template = setup.Template;
        _prefixSpace = setup.PrefixSpace;
        _specialTokens = setup.SpecialTokens;
        _files = setup.Files;
        PadTokenId = setup.PadTokenId;
        ModelMaxLength = setup.ModelMaxLength;

        VocabularySize = _vocabulary.Count == 0 ? 0 : _vocabulary.Values.Max() + 1;
        _idToToken = new string[VocabularySize];
        foreach (var (token, id) in _vocabulary)
        {
            _idToToken[id] = token;
        }

        MaskToken = _specialTokens.GetValueOrDefault("mask_token");
        MaskTokenId = SpecialTokenId("mask_token");
        BosTokenId = SpecialTokenId("bos_token");
        EosTokenId = SpecialTokenId("eos_token");
        ClsTokenId = SpecialTokenId("cls_token");
        SepTokenId = SpecialTokenId("sep_token");
        UnkTokenId = SpecialTokenId("unk_token");
    }

    /// <summary>The model family, from config.json's <c>model_type</c> (or tokenizer_config.json's <c>tokenizer_class</c>).</summary>
    public TokenizerFamily Family { get; }

    /// <summary>The HuggingFace model type: <c>bert</c>, <c>distilbert</c>, <c>roberta</c>, <c>gpt2</c>, <c>bart</c> or <c>t5</c>.</summary>
    public string ModelType { get; }

    /// <summary>One more than the largest token id (vocabulary plus added tokens): the embedding rows the ids can index.</summary>
    public int VocabularySize { get; }

    /// <summary>The id padding uses: the pad token's, else config.json's <c>pad_token_id</c>, else the end-of-sequence token's (GPT-2).</summary>
    public int PadTokenId { get; }

    /// <summary>The mask token's text (<c>[MASK]</c>, <c>&lt;mask&gt;</c>), or null when the tokenizer has none (GPT-2).</summary>
    public string? MaskToken { get; }

    /// <summary>The mask token's id, or null.</summary>
    public int? MaskTokenId { get; }

    /// <summary>The beginning-of-sequence token's id, or null.</summary>
    public int? BosTokenId { get; }

    /// <summary>The end-of-sequence token's id, or null.</summary>
    public int? EosTokenId { get; }

    /// <summary>The classifier token's id (<c>[CLS]</c>, <c>&lt;s&gt;</c>), or null.</summary>
    public int? ClsTokenId { get; }

    /// <summary>The separator token's id (<c>[SEP]</c>, <c>&lt;/s&gt;</c>), or null.</summary>
    public int? SepTokenId { get; }

    /// <summary>The unknown token's id, or null.</summary>
    public int? UnkTokenId { get; }

    /// <summary>
    /// The longest input the model accepts, special tokens included: tokenizer_config.json's <c>model_max_length</c>
    /// capped by config.json's position table (<c>max_position_embeddings</c>, <c>n_positions</c>; for RoBERTa minus
    /// <c>pad_token_id + 1</c>). <see cref="int.MaxValue"/> when neither file states a limit.
    /// </summary>
    public int ModelMaxLength { get; }

    /// <summary>Loads the tokenizer of a HuggingFace model folder.</summary>
    /// <param name="folder">
    /// A folder as <c>save_pretrained</c> writes it: <c>config.json</c> (for <c>model_type</c> and the position
    /// table), <c>tokenizer_config.json</c>, <c>special_tokens_map.json</c>, and <c>vocab.txt</c> (BERT, DistilBERT) or
    /// <c>vocab.json</c> + <c>merges.txt</c> (RoBERTa, GPT-2); a lone <c>tokenizer.json</c> also works.
    /// </param>
    /// <returns>The tokenizer.</returns>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">The folder has no vocabulary files for its model type.</exception>
    /// <exception cref="NotSupportedException">The model type, or a tokenizer.json component, is not supported.</exception>
    /// <exception cref="InvalidDataException">A file is malformed or a needed special token is missing.</exception>
    public static TransformerTokenizer FromFolder(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        if (!Directory.Exists(folder))
        {
            throw new DirectoryNotFoundException($"Tokenizer folder '{folder}' does not exist.");
        }

        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var name in TokenizerLoader.TokenizerFileNames.Prepend(TokenizerLoader.ConfigFile))
        {
            var path = Path.Combine(folder, name);
            if (File.Exists(path))
            {
                files[name] = File.ReadAllBytes(path);
            }
        }

        return TokenizerLoader.Load(files, folder);
    }

    /// <summary>Loads a tokenizer from file contents keyed by file name (as <see cref="Files"/> returns them), e.g. out of a model archive.</summary>
    /// <param name="files">File name (<c>config.json</c>, <c>vocab.txt</c>, ...) to its bytes.</param>
    /// <param name="source">Where the files came from, for error messages.</param>
    internal static TransformerTokenizer FromFiles(IReadOnlyDictionary<string, byte[]> files, string source) =>
        TokenizerLoader.Load(new Dictionary<string, byte[]>(files, StringComparer.Ordinal), source);

    /// <summary>The files this tokenizer was read from (tokenizer files and config.json), by name.</summary>
    internal IReadOnlyDictionary<string, byte[]> Files => _files;

    /// <summary>Number of special tokens <see cref="Encode"/> adds around a single text or a pair (e.g. 2 and 3 for BERT).</summary>
    /// <param name="pair">Whether a text pair is encoded.</param>
    public int SpecialTokenCount(bool pair) => pair ? _template.PairSpecialCount : _template.SingleSpecialCount;

    /// <summary>
    /// Encodes a text or a text pair with the model's special tokens, truncated to <paramref name="maxLength"/> as
    /// HuggingFace's <c>truncation=True</c> (<c>longest_first</c>) does: tokens are removed from the end of the
    /// longer sequence one at a time, from the second when both are equally long.
    /// </summary>
    /// <param name="text">The first (or only) text.</param>
    /// <param name="textPair">The second text, or null.</param>
    /// <param name="maxLength">Maximum token count, special tokens included; null means <see cref="ModelMaxLength"/>.</param>
    /// <returns>Ids, token type ids and whether the input was truncated.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxLength"/> cannot even hold the special tokens.</exception>
    public EncodedText Encode(string text, string? textPair = null, int? maxLength = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        var isPair = textPair is not null;
        var limit = maxLength ?? ModelMaxLength;
        var specialCount = SpecialTokenCount(isPair);
        if (limit < specialCount)
        {
            throw new ArgumentOutOfRangeException(nameof(maxLength), limit,
                $"maxLength {limit} cannot hold the {specialCount} special tokens a {ModelType} {(isPair ? "text pair" : "text")} needs.");
        }

        var segments = new List<TextSegment>();
        var first = new List<int>();
        EncodeSequence(text, first, segments);
        var second = new List<int>();
        if (isPair)
        {
            EncodeSequence(textPair!, second, segments);
        }

        if (Family == TokenizerFamily.T5)
        {
            // T5Tokenizer appends </s> only to a sequence that does not already end with it (_add_eos_if_not_present).
            // Dropping a typed final </s> before truncation gives the same ids: truncation would cut it first.
            DropFinalEos(first);
            DropFinalEos(second);
        }

        var excess = first.Count + second.Count + specialCount - limit;
        var (dropFirst, dropSecond) = excess > 0 ? LongestFirst(first.Count, second.Count, excess, isPair) : (0, 0);
        var (ids, typeIds) = _template.Build(
            CollectionsMarshalSpan(first)[..(first.Count - dropFirst)],
            CollectionsMarshalSpan(second)[..(second.Count - dropSecond)],
            isPair);
        if (Family != TokenizerFamily.Bert)
        {
            Array.Clear(typeIds); // RoBERTa has a single token type and GPT-2 takes none.
        }

        return new EncodedText(ids, typeIds, excess > 0);
    }

    /// <summary>
    /// Encodes a batch and pads it to its longest row, in the flat row-major layout a <c>[BatchSize, SequenceLength]</c>
    /// tensor takes: pad id in <see cref="EncodedBatch.InputIds"/>, 0 in the attention mask and token types.
    /// </summary>
    /// <param name="texts">The first (or only) text of each row.</param>
    /// <param name="textPairs">The second text of each row (null entries for rows without one), or null for single texts.</param>
    /// <param name="maxLength">Maximum tokens per row, special tokens included.</param>
    /// <param name="side">Where padding goes: right for encoders, left when a decoder generates or is scored at the last column.</param>
    /// <returns>The padded batch.</returns>
    /// <exception cref="ArgumentException"><paramref name="textPairs"/> does not have one entry per text, or a text is null.</exception>
    public EncodedBatch EncodeBatch(IReadOnlyList<string> texts, IReadOnlyList<string?>? textPairs, int maxLength, PaddingSide side = PaddingSide.Right)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (textPairs is not null && textPairs.Count != texts.Count)
        {
            throw new ArgumentException($"textPairs has {textPairs.Count} entries but texts has {texts.Count}; give one pair (or null) per text.", nameof(textPairs));
        }

        var rows = new EncodedText[texts.Count];
        for (var row = 0; row < rows.Length; row++)
        {
            var text = texts[row] ?? throw new ArgumentException($"texts[{row}] is null.", nameof(texts));
            rows[row] = Encode(text, textPairs?[row], maxLength);
        }

        return EncodedBatch.Pad(rows, PadTokenId, side);
    }

    /// <summary>
    /// Encodes text without special tokens or truncation (HuggingFace's <c>encode(text, add_special_tokens=False)</c>),
    /// e.g. a label word: <c>" positive"</c> for GPT-2 (byte-level BPE words carry their leading space), <c>"good"</c> for BERT.
    /// </summary>
    /// <param name="text">The text.</param>
    /// <returns>The token ids.</returns>
    public IReadOnlyList<int> EncodeWithoutSpecialTokens(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        EncodeSequence(text, ids, new List<TextSegment>());
        return ids;
    }

    /// <summary>The token strings of <paramref name="ids"/> (byte-level BPE tokens in their byte-to-unicode form, e.g. <c>Ġworld</c>).</summary>
    /// <param name="ids">Token ids.</param>
    /// <returns>One token per id.</returns>
    /// <exception cref="ArgumentOutOfRangeException">An id is outside the vocabulary.</exception>
    public IReadOnlyList<string> ConvertIdsToTokens(IReadOnlyList<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var tokens = new string[ids.Count];
        for (var i = 0; i < tokens.Length; i++)
        {
            var id = ids[i];
            tokens[i] = (uint)id < (uint)_idToToken.Length && _idToToken[id] is { } token
                ? token
                : throw new ArgumentOutOfRangeException(nameof(ids), id, $"ids[{i}] = {id} is not a token id of this {VocabularySize}-entry vocabulary.");
        }

        return tokens;
    }

    /// <summary>The id of a token string exactly as the vocabulary spells it (<c>##ing</c>, <c>Ġgood</c>, <c>[MASK]</c>), or null.</summary>
    /// <param name="token">The token.</param>
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        return _vocabulary.TryGetValue(token, out var id) ? id : null;
    }

    /// <summary>
    /// Writes the tokenizer files into <paramref name="folder"/> (created if needed) so that the folder loads again
    /// here and in HuggingFace: the vocabulary files, <c>special_tokens_map.json</c> and <c>tokenizer.json</c> as they
    /// were read, and <c>tokenizer_config.json</c> with <c>tokenizer_class</c> and <c>model_max_length</c> filled in
    /// when missing. config.json is the model's and is not written.
    /// </summary>
    /// <param name="folder">The destination folder.</param>
    public void SaveTo(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        Directory.CreateDirectory(folder);
        foreach (var name in TokenizerLoader.TokenizerFileNames)
        {
            if (name != TokenizerLoader.TokenizerConfigFile && _files.TryGetValue(name, out var bytes))
            {
                AtomicFile.WriteAllBytes(Path.Combine(folder, name), bytes);
            }
        }

        AtomicFile.WriteAllBytes(Path.Combine(folder, TokenizerLoader.TokenizerConfigFile), CompletedTokenizerConfig());
    }

    // Without config.json, the tokenizer class and length limit must come from tokenizer_config.json.
    private byte[] CompletedTokenizerConfig()
    {
        _files.TryGetValue(TokenizerLoader.TokenizerConfigFile, out var original);
        var config = original is null ? new JsonObject() : JsonNode.Parse(original) as JsonObject ?? new JsonObject();
        var changed = original is null;
        if (!config.ContainsKey("tokenizer_class"))
        {
            config["tokenizer_class"] = ModelType switch
            {
                "distilbert" => "DistilBertTokenizer",
                "roberta" => "RobertaTokenizer",
                "gpt2" => "GPT2Tokenizer",
                "bart" => "BartTokenizer",
                "t5" => "T5Tokenizer",
                _ => "BertTokenizer",
            };
            changed = true;
        }

        if (!config.ContainsKey("model_max_length") && ModelMaxLength != int.MaxValue)
        {
            config["model_max_length"] = ModelMaxLength;
            changed = true;
        }

        return changed || original is null
            ? JsonSerializer.SerializeToUtf8Bytes(config, new JsonSerializerOptions { WriteIndented = true })
            : original;
    }

    private int? SpecialTokenId(string role) =>
        _specialTokens.TryGetValue(role, out var content) && _vocabulary.TryGetValue(content, out var id) ? id : null;

    // One text: the prefix space rule, the split on added tokens, then the library's model on each plain piece.
    private void EncodeSequence(string text, List<int> ids, List<TextSegment> segments)
    {
        if (_prefixSpace == PrefixSpaceRule.Always
            || (_prefixSpace == PrefixSpaceRule.UnlessEmptyOrWhitespace && text.Length > 0 && !IsPythonWhitespace(text[0])))
        {
            text = " " + text;
        }

        _addedTokens.Split(text, segments);
        foreach (var segment in segments)
        {
            if (segment.TokenId >= 0)
            {
                ids.Add(segment.TokenId);
            }
            else if (_prefixSpace == PrefixSpaceRule.EachPieceUnlessSpace && text[segment.Start] != ' ')
            {
                ids.AddRange(_model.EncodeToIds(" " + text.Substring(segment.Start, segment.Length)));
            }
            else
            {
                AddPieces(ids, _model.EncodeToIds(text.AsSpan(segment.Start, segment.Length)));
            }
        }
    }

    private void DropFinalEos(List<int> ids)
    {
        if (ids.Count > 0 && ids[^1] == EosTokenId)
        {
            ids.RemoveAt(ids.Count - 1);
        }
    }

    /// <summary>
    /// SentencePiece turns a run of unknown characters into one <c>&lt;unk&gt;</c>; Microsoft.ML.Tokenizers 3.0's unigram
    /// model emits one per character (a test pins the difference), so a run's repeats go.
    /// </summary>
    private void AddPieces(List<int> ids, IReadOnlyList<int> pieces)
    {
        if (Family != TokenizerFamily.T5 || UnkTokenId is not int unknown)
        {
            ids.AddRange(pieces);
            return;
        }

        for (var i = 0; i < pieces.Count; i++)
        {
            if (pieces[i] != unknown || i == 0 || pieces[i - 1] != unknown)
            {
                ids.Add(pieces[i]);
            }
        }
    }

    /// <summary>
    /// How many tokens <c>longest_first</c> removes from each sequence: one at a time from the longer, from the
    /// second on ties (transformers' <c>truncate_sequences</c>), computed in closed form.
    /// </summary>
    internal static (int First, int Second) LongestFirst(int firstLength, int secondLength, int excess, bool isPair)
    {
        if (!isPair)
        {
            return (Math.Min(excess, firstLength), 0);
        }

        var towardsEqual = Math.Min(Math.Abs(firstLength - secondLength), excess);
        var evenly = excess - towardsEqual;
        var (first, second) = firstLength > secondLength
            ? (towardsEqual + evenly / 2, evenly - evenly / 2)
            : (evenly / 2, towardsEqual + evenly - evenly / 2);
        return (Math.Min(first, firstLength), Math.Min(second, secondLength));
    }

    private static ReadOnlySpan<int> CollectionsMarshalSpan(List<int> list) => System.Runtime.InteropServices.CollectionsMarshal.AsSpan(list);
}
