using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tokenization;

namespace MLNetTransformerExtensions.Training.Pretraining;

/// <summary>
/// A finished pretraining run: the trained language model in memory, and what was written to the output folder (a
/// HuggingFace folder that <see cref="HeadClassifier.FromPretrained"/>, <see cref="PromptClassifier.FromPretrained"/>
/// and HuggingFace's <c>from_pretrained</c> load).
/// </summary>
public sealed class PretrainingResult : IDisposable
{
    internal PretrainingResult(LanguageModel model, TransformerTokenizer tokenizer, string outputFolder)
    {
        Model = model;
        Tokenizer = tokenizer;
        OutputFolder = outputFolder;
    }

    /// <summary>The trained model, in evaluation mode; identical to the one in <see cref="OutputFolder"/>.</summary>
    public LanguageModel Model { get; }

    /// <summary>The model's tokenizer, as read back from <see cref="OutputFolder"/>.</summary>
    public TransformerTokenizer Tokenizer { get; }

    /// <summary>The HuggingFace folder written (full path); its <c>checkpoint</c> subfolder holds the resumable state.</summary>
    public string OutputFolder { get; }

    /// <summary>Encoder (masked LM) or decoder (causal LM).</summary>
    public PretrainingKind Kind { get; init; }

    /// <summary>Trainable parameters (tied weights counted once).</summary>
    public long ParameterCount { get; init; }

    /// <summary>Tokens per packed sequence, special tokens included.</summary>
    public int MaxLength { get; init; }

    /// <summary>The peak learning rate used.</summary>
    public double LearningRate { get; init; }

    /// <summary>Optimiser steps taken, over all sessions of the run.</summary>
    public int Steps { get; init; }

    /// <summary>Passes over the training text begun (the last may be partial).</summary>
    public int Epochs { get; init; }

    /// <summary>Training sequences in one pass over the input, when the run counted them (runs given in epochs); else null.</summary>
    public long? TrainingSequences { get; init; }

    /// <summary>Real (non-padding) tokens trained on, over all sessions.</summary>
    public long TrainingTokens { get; init; }

    /// <summary>Training throughput of this session, in real tokens per second of training steps.</summary>
    public double TokensPerSecond { get; init; }

    /// <summary>Time spent in training steps, over all sessions.</summary>
    public TimeSpan TrainingTime { get; init; }

    /// <summary>Held-out sequences the validation loss is measured on (0: none, and the validation fields are null).</summary>
    public int ValidationSequences { get; init; }

    /// <summary>Mean loss per predicted token on the held-out sequences before training (fresh runs only).</summary>
    public double? InitialValidationLoss { get; init; }

    /// <summary>Mean loss per predicted token on the held-out sequences at the end (masked tokens for encoders, next tokens for decoders).</summary>
    public double? ValidationLoss { get; init; }

    /// <summary>
    /// exp(<see cref="ValidationLoss"/>): for decoders the usual perplexity; for encoders the perplexity of the masked
    /// tokens given the rest, which is lower and not comparable with a decoder's.
    /// </summary>
    public double? ValidationPerplexity => ValidationLoss is double loss ? Math.Exp(loss) : null;

    /// <summary>The step this session resumed from, or null for a run started afresh.</summary>
    public int? ResumedFromStep { get; init; }

    /// <summary>
    /// When continuing a pretrained model in a fresh run: what loading it found (e.g. a masked-LM head that was not in the
    /// checkpoint and starts from random weights). Null otherwise.
    /// </summary>
    public LoadReport? LoadReport { get; init; }

    /// <summary>Whether the run trained its own vocabulary on the input.</summary>
    public bool TrainedTokenizer { get; init; }

    /// <summary>Frees the model's native memory.</summary>
    public void Dispose() => Model.Dispose();
}
