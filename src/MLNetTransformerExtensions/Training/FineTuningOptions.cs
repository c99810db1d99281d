namespace MLNetTransformerExtensions.Training;

/// <summary>Which side of a transformer classifies.</summary>
public enum ClassifierKind
{
    /// <summary>An encoder (BERT, RoBERTa, DistilBERT): the first token's final state feeds the head.</summary>
    Encoder,

    /// <summary>A decoder (GPT-2): the last real token's final state feeds the head.</summary>
    Decoder,

    /// <summary>
    /// An encoder-decoder (BART, T5): BART's head reads the decoder's state at the last end-of-sequence token; with the
    /// prompt strategy the decoder scores each class's target text (text-to-text), teacher forced.
    /// </summary>
    EncoderDecoder,
}

/// <summary>Hyper-parameters of fine-tuning, with HuggingFace Trainer's meanings.</summary>
public sealed record FineTuningOptions
{
    /// <summary>Passes over the training data.</summary>
    public int Epochs { get; init; } = 3;

    /// <summary>Sequences per forward pass.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Peak learning rate of AdamW, reached after warm-up.</summary>
    public double LearningRate { get; init; } = 5e-5;

    /// <summary>Decoupled weight decay; never applied to biases and LayerNorm weights.</summary>
    public double WeightDecay { get; init; } = 0.01;

    /// <summary>Share of the optimisation steps spent warming the learning rate up linearly from 0.</summary>
    public double WarmupRatio { get; init; } = 0.1;

    /// <summary>Gradients are clipped to this global L2 norm; 0 disables clipping.</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>Batches whose gradients are summed before each optimiser step.</summary>
    public int GradientAccumulationSteps { get; init; } = 1;

    /// <summary>Longest input in tokens (special tokens included), capped by the model's maximum; null for the model's maximum.</summary>
    public int? MaxLength { get; init; } = 128;

    /// <summary>Stop when the validation accuracy has not improved for this many epochs, and restore the best epoch; null never stops early.</summary>
    public int? EarlyStoppingPatience { get; init; }

    /// <summary>Seed for initialisation, shuffling and dropout: the same seed gives the same model.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Sequences per forward pass at inference.</summary>
    public int InferenceBatchSize { get; init; } = 64;

    /// <summary>
    /// The number format of the training steps: float32 (default), bfloat16 mixed precision (float32 master weights and
    /// optimizer state; see <see cref="TrainingPrecision.BFloat16"/>), or <see cref="TrainingPrecision.Auto"/>, bfloat16
    /// only where this CPU multiplies it faster. Validation and the saved weights are float32 either way.
    /// </summary>
    public TrainingPrecision Precision { get; init; } = TrainingPrecision.Float32;

    /// <summary>Checks every value and says which is wrong.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    public void Validate()
    {
        static void Check(bool ok, string name, object value, string expected)
        {
            if (!ok)
            {
                throw new ArgumentOutOfRangeException(name, value, $"{name} must be {expected}.");
            }
        }

        Check(Epochs >= 0, nameof(Epochs), Epochs, "0 or more");
        Check(BatchSize >= 1, nameof(BatchSize), BatchSize, "at least 1");
        Check(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "a positive number");
        Check(WeightDecay >= 0, nameof(WeightDecay), WeightDecay, "0 or more");
        Check(WarmupRatio is >= 0 and < 1, nameof(WarmupRatio), WarmupRatio, "in [0, 1)");
        Check(MaxGradNorm >= 0, nameof(MaxGradNorm), MaxGradNorm, "0 (off) or more");
        Check(GradientAccumulationSteps >= 1, nameof(GradientAccumulationSteps), GradientAccumulationSteps, "at least 1");
        Check(MaxLength is null or >= 2, nameof(MaxLength), MaxLength ?? 0, "at least 2, or null for the model's maximum");
        Check(EarlyStoppingPatience is null or >= 1, nameof(EarlyStoppingPatience), EarlyStoppingPatience ?? 0, "at least 1, or null");
        Check(InferenceBatchSize >= 1, nameof(InferenceBatchSize), InferenceBatchSize, "at least 1");
        Check(Enum.IsDefined(Precision), nameof(Precision), Precision, "Float32, BFloat16 or Auto");
    }
}

/// <summary>Rows to train or validate on: texts, optional second texts, and class indices.</summary>
/// <param name="Texts">The first text of each row.</param>
/// <param name="SecondTexts">The second text of each row (sentence pairs), or null.</param>
/// <param name="Labels">Class index of each row, 0-based.</param>
public sealed record LabeledTexts(IReadOnlyList<string> Texts, IReadOnlyList<string>? SecondTexts, IReadOnlyList<int> Labels)
{
    /// <summary>The number of rows.</summary>
    public int Count => Texts.Count;
}

/// <summary>What happened during fine-tuning, reported after each step and each epoch.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="Epochs">Total epochs.</param>
/// <param name="Step">Optimiser steps so far.</param>
/// <param name="TotalSteps">Optimiser steps planned.</param>
/// <param name="Loss">Mean training loss over the epoch so far.</param>
/// <param name="LearningRate">The learning rate of the last step.</param>
/// <param name="SequencesPerSecond">Training throughput of the epoch so far.</param>
/// <param name="IsEpochEnd">Whether the epoch just ended (validation fields are then set, when validating).</param>
/// <param name="ValidationAccuracy">Accuracy on the validation rows at the end of the epoch.</param>
/// <param name="ValidationLogLoss">Mean log-loss on the validation rows at the end of the epoch.</param>
public sealed record TrainingProgress(
    int Epoch,
    int Epochs,
    int Step,
    int TotalSteps,
    double Loss,
    double LearningRate,
    double SequencesPerSecond,
    bool IsEpochEnd,
    double? ValidationAccuracy = null,
    double? ValidationLogLoss = null)
{
    /// <summary>
    /// Something the user should know, given once per process on the first step's report: for example that bfloat16
    /// training was asked for on a CPU where it is slower than float32. Null otherwise.
    /// </summary>
    public string? Notice { get; init; }
}
