using MLNetTransformerExtensions.Builtin;
using MLNetTransformerExtensions.Hub;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// Options of the SetFit trainer: columns (from <see cref="TextClassificationOptions"/>), the sentence encoder, the
/// contrastive fine-tuning of its body (SetFit's <c>num_iterations</c>, <c>num_epochs</c>, <c>body_learning_rate</c>,
/// <c>batch_size</c>), and the logistic-regression head (ML.NET's L-BFGS maximum entropy).
/// </summary>
public sealed class SetFitOptions : TextClassificationOptions
{
    /// <summary>The sentence encoder: a built-in model, a model folder or a hub id.</summary>
    public string ModelPath = Defaults.ModelPath;

    /// <summary>Where and how hub ids are downloaded; null reads the environment.</summary>
    public HubOptions? Hub;

    /// <summary>Pair-generation rounds: each makes one same-label and one other-label pair per training row (SetFit's <c>num_iterations</c>).</summary>
    public int NumberOfIterations = Defaults.NumberOfIterations;

    /// <summary>A number of pairs to train on instead of <see cref="NumberOfIterations"/> rounds, or null.</summary>
    public int? NumberOfPairs;

    /// <summary>Passes over the pairs. 0 skips the contrastive step: the head is fitted on the model's own embeddings (a linear probe).</summary>
    public int NumberOfEpochs = Defaults.NumberOfEpochs;

    /// <summary>Peak learning rate of the body's AdamW (SetFit's <c>body_learning_rate</c>).</summary>
    public double LearningRate = Defaults.LearningRate;

    /// <summary>Pairs per optimisation step.</summary>
    public int PairBatchSize = Defaults.PairBatchSize;

    /// <summary>Decoupled weight decay of the body's AdamW; never applied to biases and LayerNorm weights.</summary>
    public double WeightDecay = Defaults.WeightDecay;

    /// <summary>The pooling; null takes the model's.</summary>
    public EmbeddingPooling? Pooling;

    /// <summary>Whether embeddings are scaled to unit length; null takes the model's.</summary>
    public bool? Normalize;

    /// <summary>Longest input in tokens; null takes the model's <c>max_seq_length</c>, else its maximum.</summary>
    public int? MaximumLength;

    /// <summary>L2 regularisation of the head (ML.NET's L-BFGS <c>L2Regularization</c>; 1, as scikit-learn's LogisticRegression with C = 1 that SetFit uses).</summary>
    public float HeadL2Regularization = Defaults.HeadL2Regularization;

    /// <summary>L1 regularisation of the head; 0, as scikit-learn's LogisticRegression (ML.NET's own default, 1, zeroes most of a few-shot head).</summary>
    public float HeadL1Regularization = Defaults.HeadL1Regularization;

    /// <summary>float32 (default) or bfloat16 scoring; training is float32 either way. Saved with the model.</summary>
    public InferencePrecision InferencePrecision = InferencePrecision.Float32;

    /// <summary>
    /// The number format of the body's contrastive fine-tuning: float32 (default), bfloat16 mixed precision or Auto
    /// (bfloat16 only where this CPU multiplies it faster); see <see cref="TrainingPrecision"/>. The weights stay float32.
    /// </summary>
    public TrainingPrecision TrainingPrecision = TrainingPrecision.Float32;

    /// <summary>The default values, SetFit's where it has them.</summary>
    public static new class Defaults
    {
        /// <summary>The default encoder: sentence-transformers' all-MiniLM-L6-v2, built in.</summary>
        public const string ModelPath = BuiltinModels.DefaultName;

        /// <summary>SetFit's default <c>num_iterations</c>.</summary>
        public const int NumberOfIterations = 20;

        /// <summary>SetFit's default <c>num_epochs</c>.</summary>
        public const int NumberOfEpochs = 1;

        /// <summary>SetFit's default <c>body_learning_rate</c>.</summary>
        public const double LearningRate = 2e-5;

        /// <summary>SetFit's default <c>batch_size</c>.</summary>
        public const int PairBatchSize = 16;

        /// <summary>sentence-transformers' default weight decay.</summary>
        public const double WeightDecay = 0.01;

        /// <summary>The default L2 regularisation of the head.</summary>
        public const float HeadL2Regularization = 1f;

        /// <summary>The default L1 regularisation of the head.</summary>
        public const float HeadL1Regularization = 0f;
    }

    internal FineTuningOptions ToFineTuning() => new()
    {
        Epochs = NumberOfEpochs,
        BatchSize = PairBatchSize,
        LearningRate = LearningRate,
        WeightDecay = WeightDecay,
        WarmupRatio = 0.1,
        MaxGradNorm = 1.0,
        MaxLength = null,
        InferenceBatchSize = BatchSize,
        Precision = TrainingPrecision,
    };

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(ModelPath))
        {
            throw new ArgumentException($"ModelPath must name a sentence encoder: a built-in one ({string.Join(", ", BuiltinModels.Names)}), a folder or a hub id.", "options");
        }

        static void Check(bool ok, string name, object value, string expected)
        {
            if (!ok)
            {
                throw new ArgumentOutOfRangeException("options", value, $"{name} must be {expected}.");
            }
        }

        Check(NumberOfIterations >= 1, nameof(NumberOfIterations), NumberOfIterations, "at least 1");
        Check(NumberOfPairs is null or >= 1, nameof(NumberOfPairs), NumberOfPairs ?? 0, "at least 1, or null to use NumberOfIterations");
        Check(NumberOfEpochs >= 0, nameof(NumberOfEpochs), NumberOfEpochs, "0 (no contrastive step) or more");
        Check(LearningRate > 0 && double.IsFinite(LearningRate), nameof(LearningRate), LearningRate, "a positive number");
        Check(PairBatchSize >= 1, nameof(PairBatchSize), PairBatchSize, "at least 1");
        Check(WeightDecay >= 0, nameof(WeightDecay), WeightDecay, "0 or more");
        Check(BatchSize >= 1, nameof(BatchSize), BatchSize, "at least 1");
        Check(MaximumLength is null or >= 2, nameof(MaximumLength), MaximumLength ?? 0, "at least 2, or null for the model's");
        Check(Pooling is null || Enum.IsDefined(Pooling.Value), nameof(Pooling), Pooling ?? 0, "Mean, Cls or LastToken, or null for the model's");
        Check(HeadL2Regularization >= 0 && float.IsFinite(HeadL2Regularization), nameof(HeadL2Regularization), HeadL2Regularization, "0 or more");
        Check(HeadL1Regularization >= 0 && float.IsFinite(HeadL1Regularization), nameof(HeadL1Regularization), HeadL1Regularization, "0 or more");
        Check(Enum.IsDefined(InferencePrecision), nameof(InferencePrecision), InferencePrecision, "Float32 or BFloat16");
        Check(Enum.IsDefined(TrainingPrecision), nameof(TrainingPrecision), TrainingPrecision, "Float32, BFloat16 or Auto");
    }
}
