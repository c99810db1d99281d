using MLNetTransformerExtensions.Checkpoints;
using MLNetTransformerExtensions.Diagnostics;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Runtime;
using MLNetTransformerExtensions.Tokenization;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// A transformer that turns texts into fixed-size vectors, as sentence-transformers' <c>SentenceTransformer.encode</c>:
/// tokenize (truncated to <see cref="MaxLength"/>), final hidden states, <see cref="Pooling"/>, then optional L2
/// normalisation. Batched, no-grad inference over raw texts; saved as a sentence-transformers folder.
/// </summary>
public sealed class SentenceEncoder : IDisposable
{
    private readonly InferenceModel<SequenceClassificationModel> _inference;

    private SentenceEncoder(SequenceClassificationModel model, TransformerTokenizer tokenizer, EmbeddingPooling pooling, bool normalize, int maxLength)
    {
        Model = model;
        Tokenizer = tokenizer;
        Pooling = pooling;
        Normalize = normalize;
        MaxLength = maxLength;
        _inference = new InferenceModel<SequenceClassificationModel>(model, TransformerModels.CreateForSequenceClassification);
    }

    /// <summary>
    /// The network. Only its body (<see cref="TransformerModel.HiddenStates"/>) is used; its classification head is
    /// never trained nor saved. Building on the sequence-classification model reuses every family's loading rules.
    /// </summary>
    internal SequenceClassificationModel Model { get; }

    /// <summary>The tokenizer.</summary>
    public TransformerTokenizer Tokenizer { get; }

    /// <summary>How the final hidden states become one vector.</summary>
    public EmbeddingPooling Pooling { get; }

    /// <summary>Whether vectors are scaled to unit length (then a dot product is the cosine similarity).</summary>
    public bool Normalize { get; }

    /// <summary>Longest input in tokens, special tokens included; longer texts are truncated.</summary>
    public int MaxLength { get; }

    /// <summary>The length of every vector: the model's hidden size.</summary>
    public int Dimension => Model.Config.HiddenSize;

    /// <summary>
    /// The number format of <see cref="Embed"/> (float32 by default). bfloat16 scores with a bfloat16 copy of the
    /// weights, made on first use; pooling and normalisation run in float32 either way.
    /// </summary>
    public InferencePrecision InferencePrecision
    {
        get => _inference.Precision;
        set => _inference.Precision = value;
    }

    /// <summary>
    /// Loads an encoder from a model folder. Each setting left null comes from the folder: sentence-transformers'
    /// files (modules.json, 1_Pooling/config.json, sentence_bert_config.json; the built-in models have them too), else
    /// mean pooling for encoders and last-token pooling for decoders, no normalisation, and the model's maximum length.
    /// </summary>
    /// <param name="folder">A HuggingFace or sentence-transformers model folder with weights.</param>
    /// <param name="pooling">The pooling, or null for the folder's.</param>
    /// <param name="normalize">Whether to L2-normalise, or null for the folder's.</param>
    /// <param name="maxLength">The longest input in tokens (capped by the model's maximum), or null for the folder's.</param>
    /// <returns>The encoder, in evaluation mode.</returns>
    /// <exception cref="InvalidDataException">The folder has no weights, they miss part of the body, or a sentence-transformers file is malformed.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxLength"/> is below 2.</exception>
    public static SentenceEncoder FromFolder(string folder, EmbeddingPooling? pooling = null, bool? normalize = null, int? maxLength = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        if (pooling is { } p && !Enum.IsDefined(p))
        {
            throw new ArgumentOutOfRangeException(nameof(pooling), p, "The pooling must be Mean, Cls or LastToken.");
        }

        if (maxLength is < 2)
        {
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "The maximum length must be at least 2 tokens ([CLS] and [SEP] alone take 2), or null for the model's.");
        }

        TorchRuntime.EnsureInitialized();
        var stated = SentenceEmbeddingSettings.FromFolder(folder);
        var config = TransformerConfig.FromFolder(folder);
        var tokenizer = TransformerTokenizer.FromFolder(folder);
        var model = TransformerModels.CreateForSequenceClassification(config);
        try
        {
            var report = TransformerModels.LoadFromFolder(model, folder)
                ?? throw new InvalidDataException($"'{folder}' has no weights (model.safetensors or pytorch_model.bin); a sentence encoder needs trained weights.");
            var bodyMissing = report.Missing.Where(k => !IsOutsideTheBody(model, k)).ToList();
            if (bodyMissing.Count > 0)
            {
                throw new InvalidDataException($"The weights in '{folder}' lack part of the model's body ({string.Join(", ", bodyMissing.Take(5))}{(bodyMissing.Count > 5 ? ", …" : string.Empty)}); its embeddings would be random.");
            }

            model.eval();
            var resolvedPooling = pooling ?? stated.Pooling ?? (config.Family == ModelFamily.Gpt2 ? EmbeddingPooling.LastToken : EmbeddingPooling.Mean);
            var length = HeadClassifier.ResolveMaxLength(maxLength ?? stated.MaxLength, tokenizer);
            return new SentenceEncoder(model, tokenizer, resolvedPooling, normalize ?? stated.Normalize ?? false, length);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Writes the encoder as a sentence-transformers folder: the bare base model's weights, config, tokenizer, and the pooling files.</summary>
    /// <param name="folder">The folder (created if needed).</param>
    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), Model.Config.ToJson());
        // sentence-transformers stores the bare base model (BertModel's keys, no "bert." prefix and no head).
        var prefix = Model.BasePrefix + ".";
        var body = Model.state_dict()
            .Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal))
            .ToDictionary(p => p.Key[prefix.Length..], p => p.Value);
        SafeTensorsFile.Write(Path.Combine(folder, CheckpointFiles.SafeTensorsName), body, new Dictionary<string, string> { ["format"] = "pt" });
        Tokenizer.SaveTo(folder);
        SentenceEmbeddingSettings.Write(folder, Pooling, Normalize, MaxLength, Dimension);
    }

    /// <summary>
    /// Embeds texts, in input order, under no-grad in <see cref="InferencePrecision"/>, in padded forward passes of rows
    /// of similar length. A missing text is embedded as the empty string.
    /// </summary>
    /// <param name="texts">The texts.</param>
    /// <param name="batchSize">The most rows per forward pass.</param>
    /// <returns>One vector of <see cref="Dimension"/> values per text.</returns>
    public float[][] Embed(IReadOnlyList<string> texts, int batchSize = 32)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        return EmbedIn(texts, batchSize, InferencePrecision);
    }

    internal float[][] EmbedIn(IReadOnlyList<string> texts, int batchSize, InferencePrecision precision)
    {
        using var span = TransformerTelemetry.ActivitySource.StartActivity("Embed");
        span?.SetTag("rows", texts.Count);
        var model = _inference.ForScoring(precision);
        using var _ = no_grad();
        var tokenizing = TransformerTelemetry.Start(TransformerTelemetry.Tokenization);
        var encoded = new EncodedText[texts.Count];
        for (var i = 0; i < encoded.Length; i++)
        {
            encoded[i] = Encode(texts[i]);
        }

        TransformerTelemetry.Stop(TransformerTelemetry.Tokenization, tokenizing);

        var result = new float[texts.Count][];
        var dimension = Dimension;
        foreach (var pass in HeadClassifier.PassesByLength([.. encoded.Select(e => e.InputIds.Length)], batchSize, Model.Config))
        {
            using var scope = NewDisposeScope();
            var vectors = Vectors(model, [.. pass.Select(i => encoded[i])]).contiguous().data<float>().ToArray();
            for (var r = 0; r < pass.Length; r++)
            {
                result[pass[r]] = vectors.AsSpan(r * dimension, dimension).ToArray();
            }
        }

        return result;
    }

    /// <summary>
    /// The token ids <see cref="Embed"/> reads for a text: truncated to <see cref="MaxLength"/>; a text with no tokens
    /// (a decoder's empty text) becomes the end-of-text token alone.
    /// </summary>
    /// <param name="text">The text; null is the empty string.</param>
    /// <returns>The ids and token types.</returns>
    public EncodedText Encode(string? text) => Batches.EncodeNonEmpty(Tokenizer, text, null, MaxLength);

    /// <summary>
    /// The pooled (and normalised) vectors (B, H) of tokenized rows, padded on the right, in float32: through the float32
    /// weights with the autograd graph when training, or the model given for scoring.
    /// </summary>
    internal Tensor Vectors(SequenceClassificationModel model, IReadOnlyList<EncodedText> rows)
    {
        var (ids, mask, types) = Batches.Prepare(rows, Tokenizer.PadTokenId, model.Config);
        var forward = TransformerTelemetry.Start(TransformerTelemetry.Forward);
        var hidden = model.HiddenStates(ids, mask, types);
        // Pooling sums up to hundreds of positions: in float32, so bfloat16 scoring loses precision only in the network.
        var vectors = SentencePooling.Pool(hidden.to(ScalarType.Float32), mask, Pooling, Normalize);
        TransformerTelemetry.Stop(TransformerTelemetry.Forward, forward);
        return vectors;
    }

    /// <summary>The bfloat16 copy is stale once the float32 weights change (contrastive training).</summary>
    internal void WeightsChanged() => _inference.Discard();

    /// <summary>Whether a bfloat16 copy of the weights is alive (for tests).</summary>
    internal bool HasInferenceCopy => _inference.HasCopy;

    /// <summary>Frees the network's native memory, and its bfloat16 copy if there is one.</summary>
    public void Dispose()
    {
        _inference.Dispose();
        Model.Dispose();
    }

    // The classification head, and a pooler a checkpoint may lack (arctic-embed-xs has none), play no part in embeddings.
    private static bool IsOutsideTheBody(TransformerModel model, string key) =>
        model.HeadPrefixes.Any(h => key.StartsWith(h, StringComparison.Ordinal)) || key.Contains("pooler.", StringComparison.Ordinal);
}
