using TorchSharp;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// What <see cref="FineTuner"/>'s loop needs from a classifier, whatever its strategy (a classification head, or
/// label words scored by a language-model head): rows tokenized once, a batch loss, and probabilities to validate with.
/// </summary>
/// <typeparam name="TRow">One tokenized training row.</typeparam>
internal interface ITrainableClassifier<TRow>
{
    /// <summary>The network whose parameters are trained.</summary>
    nn.Module Module { get; }

    /// <summary>The number of classes; labels are 0 .. ClassCount - 1.</summary>
    int ClassCount { get; }

    /// <summary>The number of classes of the validation rows (SetFit trains on pairs and validates on classes).</summary>
    int ValidationClassCount => ClassCount;

    /// <summary>Tokenizes one training row.</summary>
    TRow EncodeForTraining(string text, string? secondText);

    /// <summary>A row's length in tokens, for length-grouped batching.</summary>
    int TokenCount(TRow row);

    /// <summary>The mean training loss of a batch (a scalar with a graph to back-propagate).</summary>
    Tensor Loss(IReadOnlyList<TRow> rows, long[] labels);

    /// <summary>Class probabilities, as the classifier predicts them after training, in float32 (validation picks the epoch to keep).</summary>
    float[][] PredictProbabilities(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts, int batchSize);

    /// <summary>Called before each validation pass, after the weights changed (e.g. to refresh a calibration).</summary>
    void BeforeValidation();

    /// <summary>Called when training starts and when it ends: the weights change, so a bfloat16 copy made for inference is stale.</summary>
    void WeightsChanged();
}
