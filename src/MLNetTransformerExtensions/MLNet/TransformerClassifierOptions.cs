using MLNetTransformerExtensions.Hub;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>Options of the transformer trainers: columns (from <see cref="TextClassificationOptions"/>), the model, and fine-tuning.</summary>
public abstract class TransformerClassifierOptions : TextClassificationOptions
{
    /// <summary>
    /// The model to fine-tune: a HuggingFace model folder (config.json, weights, tokenizer files), or a HuggingFace Hub id
    /// (<c>name</c>, <c>owner/name</c>, optionally <c>@revision</c>) downloaded once into huggingface_hub's cache.
    /// A folder with no weights trains from scratch.
    /// </summary>
    public string ModelPath = string.Empty;

    /// <summary>Passes over the training data; 0 keeps the checkpoint's weights as they are.</summary>
    public int NumberOfEpochs = FineTuningDefaults.Epochs;

    /// <summary>Peak learning rate of AdamW, reached after warm-up, then decayed linearly to 0.</summary>
    public double LearningRate = FineTuningDefaults.LearningRate;

    /// <summary>Decoupled weight decay; never applied to biases and LayerNorm weights.</summary>
    public double WeightDecay = FineTuningDefaults.WeightDecay;

    /// <summary>Share of optimisation steps spent warming the learning rate up.</summary>
    public double WarmupRatio = FineTuningDefaults.WarmupRatio;

    /// <summary>Global gradient-norm clipping; 0 disables it.</summary>
    public double MaxGradientNorm = FineTuningDefaults.MaxGradNorm;

    /// <summary>Batches whose gradients are summed before each optimiser step.</summary>
    public int GradientAccumulationSteps = 1;

    /// <summary>Longest input in tokens (special tokens included); longer texts are truncated. Null: the model's maximum.</summary>
    public int? MaximumLength = FineTuningDefaults.MaxLength;

    /// <summary>With a <see cref="TextClassificationOptions.ValidationSet"/>: stop after this many epochs without a better validation accuracy, and keep the best epoch.</summary>
    public int? EarlyStoppingPatience;

    /// <summary>Head (default) or prompt-based classification.</summary>
    public ClassificationStrategy Strategy = ClassificationStrategy.Head;

    /// <summary>Prompt strategy: the template, with <c>{text}</c> (and <c>{text2}</c> for pairs; <c>{mask}</c> for encoders). Null: a sentiment default.</summary>
    public string? PromptTemplate;

    /// <summary>
    /// Prompt strategy: one label word per class, as <c>"positive= positive,negative= negative"</c> (class=word; a
    /// leading space matters for GPT-2 and RoBERTa vocabularies). Null: derived from the class names (negative/positive
    /// style names and Boolean labels map to sentiment words; other names are used as they are).
    /// </summary>
    public string? LabelWords;

    /// <summary>Prompt strategy: demonstrations per class prepended to every prompt (chosen from the training data, seeded, balanced).</summary>
    public int Shots;

    /// <summary>Prompt strategy: contextual calibration, dividing label-word probabilities by those of a content-free input.</summary>
    public bool Calibrate;

    /// <summary>Prompt strategy: average rather than sum the log-probabilities of multi-token label words.</summary>
    public bool LengthNormalizedLabelWords;

    /// <summary>Where and how hub ids are downloaded; null reads huggingface_hub's environment variables (HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE, HF_TOKEN).</summary>
    public HubOptions? Hub;

    /// <summary>
    /// The number format the fitted transformer scores in (training and validation always run in float32). bfloat16
    /// is several times faster on CPUs with bfloat16 instructions and moves probabilities by about 10⁻²; see
    /// <see cref="Training.InferencePrecision"/>. It is saved with the model and can be changed on the fitted
    /// transformer (<see cref="TextClassificationTransformer.InferencePrecision"/>).
    /// </summary>
    public InferencePrecision InferencePrecision = InferencePrecision.Float32;

    /// <summary>
    /// The number format of fine-tuning: float32 (default), bfloat16 mixed precision (float32 master weights and AdamW
    /// state, the loss in float32) or Auto, bfloat16 only where this CPU multiplies it at least 1.2× faster than float32;
    /// see <see cref="Training.TrainingPrecision"/>. Validation and the saved weights are float32 either way.
    /// </summary>
    public TrainingPrecision TrainingPrecision = TrainingPrecision.Float32;

    internal FineTuningOptions ToFineTuning() => new()
    {
        Epochs = NumberOfEpochs,
        BatchSize = BatchSize,
        LearningRate = LearningRate,
        WeightDecay = WeightDecay,
        WarmupRatio = WarmupRatio,
        MaxGradNorm = MaxGradientNorm,
        GradientAccumulationSteps = GradientAccumulationSteps,
        MaxLength = MaximumLength,
        EarlyStoppingPatience = EarlyStoppingPatience,
        InferenceBatchSize = BatchSize,
        Precision = TrainingPrecision,
    };

    /// <summary>The defaults of fine-tuning.</summary>
    public static class FineTuningDefaults
    {
        /// <summary>Default number of epochs.</summary>
        public const int Epochs = 3;

        /// <summary>Default peak learning rate.</summary>
        public const double LearningRate = 5e-5;

        /// <summary>Default weight decay.</summary>
        public const double WeightDecay = 0.01;

        /// <summary>Default warm-up share.</summary>
        public const double WarmupRatio = 0.1;

        /// <summary>Default gradient clipping norm.</summary>
        public const double MaxGradNorm = 1.0;

        /// <summary>Default maximum length in tokens.</summary>
        public const int MaxLength = 128;
    }
}
