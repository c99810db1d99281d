using MLNetTransformerExtensions.Diagnostics;
using MLNetTransformerExtensions.Tokenization;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// SetFit's first step: fine-tunes a <see cref="SentenceEncoder"/> on pairs of texts so that texts of the same label
/// embed close together and texts of different labels apart, with sentence-transformers' <c>CosineSimilarityLoss</c>
/// (the mean squared error between the pair's cosine similarity and its target, 1 or 0). The loop is
/// <see cref="FineTuner"/>'s: AdamW, warm-up and linear decay, clipping, progress, cancellation, seed. Validation, when
/// asked for, classifies labelled rows with the whole SetFit model the encoder makes at the end of each epoch.
/// </summary>
internal sealed class ContrastiveTuner(SentenceEncoder encoder, ContrastiveTuner.Validation? validation) : ITrainableClassifier<(EncodedText First, EncodedText Second)>
{
    private Func<float[], float[]>? _head;

    /// <summary>Rows to validate on after each epoch, and how to make the SetFit model's head for the encoder as it is then.</summary>
    /// <param name="Rows">Labelled rows (class indices).</param>
    /// <param name="ClassCount">The number of classes.</param>
    /// <param name="FitHead">Fits the head on the encoder's current embeddings of the training rows; returns embedding → class probabilities.</param>
    public sealed record Validation(LabeledTexts Rows, int ClassCount, Func<Func<float[], float[]>> FitHead);

    /// <summary>Trains the encoder in place on pairs drawn from the labelled rows.</summary>
    /// <param name="encoder">The encoder to fine-tune.</param>
    /// <param name="train">The labelled rows (second texts are ignored).</param>
    /// <param name="iterations">Pair-generation rounds (SetFit's <c>num_iterations</c>).</param>
    /// <param name="pairCount">A number of pairs instead, or null.</param>
    /// <param name="options">Epochs, batch size (pairs per step), learning rate, seed…</param>
    /// <param name="progress">Receives progress after each step and each epoch, or null.</param>
    /// <param name="cancellationToken">Stops training within one batch.</param>
    /// <param name="validation">Rows to classify after each epoch (progress then has their accuracy), or null.</param>
    /// <returns>The number of pairs trained on.</returns>
    public static int Train(SentenceEncoder encoder, LabeledTexts train, int iterations, int? pairCount, FineTuningOptions options,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken, Validation? validation = null)
    {
        var pairs = ContrastivePairs.Generate(train.Labels, iterations, pairCount, options.Seed);
        var pairTexts = new LabeledTexts(
            [.. pairs.Select(p => train.Texts[p.First])],
            [.. pairs.Select(p => train.Texts[p.Second])],
            [.. pairs.Select(p => p.Similar ? 1 : 0)]);
        FineTuner.TrainPairs(new ContrastiveTuner(encoder, validation), pairTexts, validation?.Rows, options, progress, cancellationToken);
        return pairs.Count;
    }

    public TorchSharp.torch.nn.Module Module => encoder.Model;

    /// <summary>Dissimilar (0) or similar (1).</summary>
    public int ClassCount => 2;

    /// <summary>The classes of the rows validated on.</summary>
    public int ValidationClassCount => validation?.ClassCount ?? ClassCount;

    public (EncodedText First, EncodedText Second) EncodeForTraining(string text, string? secondText) =>
        (encoder.Encode(text), encoder.Encode(secondText));

    public int TokenCount((EncodedText First, EncodedText Second) row) => Math.Max(row.First.Length, row.Second.Length);

    public Tensor Loss(IReadOnlyList<(EncodedText First, EncodedText Second)> rows, long[] labels)
    {
        // Both sides in one padded pass: (2B, H), first texts then second texts.
        var vectors = encoder.Vectors(encoder.Model, [.. rows.Select(r => r.First), .. rows.Select(r => r.Second)]);
        var loss = TransformerTelemetry.Start(TransformerTelemetry.Forward);
        vectors = vectors.to(ScalarType.Float32);                                             // float32 for the loss, also in mixed precision
        var first = vectors[..rows.Count];                                                   // (B, H)
        var second = vectors[rows.Count..];                                                  // (B, H)
        var similarity = nn.functional.cosine_similarity(first, second, dim: 1);             // (B)
        var result = nn.functional.mse_loss(similarity, tensor(labels).to(ScalarType.Float32));
        TransformerTelemetry.Stop(TransformerTelemetry.Forward, loss);
        return result;
    }

    /// <summary>For validation: the SetFit model the encoder makes now classifies the texts (pairs are never validated on).</summary>
    public float[][] PredictProbabilities(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts, int batchSize) =>
        _head is null || secondTexts is not null
            ? throw new InvalidOperationException("The contrastive step validates by classifying single texts with the whole SetFit model.")
            : [.. encoder.EmbedIn(texts, batchSize, InferencePrecision.Float32).Select(_head)];

    /// <summary>Fits the head on the encoder as the epoch left it, once per validation pass.</summary>
    public void BeforeValidation() => _head = validation?.FitHead();

    public void WeightsChanged() => encoder.WeightsChanged();
}
