using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLNetTransformerExtensions.MLNet.Internal;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// SetFit few-shot classification in ML.NET's catalogs: <c>mlContext.MulticlassClassification.Trainers.SetFit(...)</c>
/// and the same on <c>BinaryClassification.Trainers</c>.
/// </summary>
/// <remarks>
/// <para><b>Input and output columns.</b> As the other text classifiers: a text column (String) and the label (a key for
/// multiclass, Boolean for binary); outputs <c>Score</c> and <c>PredictedLabel</c> (and <c>Probability</c> for binary).</para>
/// <para><b>Trainer characteristics.</b> SetFit (Tunstall et al. 2022): the sentence encoder is fine-tuned on pairs of
/// training texts (same label: cosine 1; different: cosine 0; balanced and seeded by the <c>MLContext</c>), then an L-BFGS
/// maximum entropy head is fitted on their embeddings. Made for a handful of examples per class: 8 per class often
/// suffice. With <see cref="SetFitOptions.NumberOfEpochs"/> = 0 it is a linear probe (frozen embeddings and the head).
/// The whole model is saved inside the ML.NET model file.</para>
/// </remarks>
public static class SetFitCatalog
{
    /// <summary>Trains a SetFit classifier for the label's classes.</summary>
    /// <param name="catalog">The multiclass trainers.</param>
    /// <param name="labelColumnName">The label column: a key type, as <c>MapValueToKey</c> makes.</param>
    /// <param name="textColumnName">The text column.</param>
    /// <param name="modelPath">The sentence encoder: a built-in model, a folder or a hub id.</param>
    /// <param name="numberOfIterations">Pair-generation rounds (SetFit's <c>num_iterations</c>).</param>
    /// <param name="numberOfEpochs">Passes over the pairs; 0 fits the head on frozen embeddings.</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator SetFit(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string labelColumnName = TextClassificationOptions.Defaults.LabelColumnName, string textColumnName = TextClassificationOptions.Defaults.TextColumnName,
        string modelPath = SetFitOptions.Defaults.ModelPath, int numberOfIterations = SetFitOptions.Defaults.NumberOfIterations,
        int numberOfEpochs = SetFitOptions.Defaults.NumberOfEpochs) =>
        catalog.SetFit(Fill(labelColumnName, textColumnName, modelPath, numberOfIterations, numberOfEpochs));

    /// <summary>Trains a SetFit classifier with every option.</summary>
    /// <param name="catalog">The multiclass trainers.</param>
    /// <param name="options">Columns, encoder, contrastive step and head.</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator SetFit(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, SetFitOptions options) =>
        Create(catalog.GetHostEnvironment(), TextClassificationTask.Multiclass, options);

    /// <summary>Trains a SetFit classifier for a Boolean label.</summary>
    /// <param name="catalog">The binary trainers.</param>
    /// <param name="labelColumnName">The Boolean label column.</param>
    /// <param name="textColumnName">The text column.</param>
    /// <param name="modelPath">The sentence encoder: a built-in model, a folder or a hub id.</param>
    /// <param name="numberOfIterations">Pair-generation rounds (SetFit's <c>num_iterations</c>).</param>
    /// <param name="numberOfEpochs">Passes over the pairs; 0 fits the head on frozen embeddings.</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator SetFit(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog,
        string labelColumnName = TextClassificationOptions.Defaults.LabelColumnName, string textColumnName = TextClassificationOptions.Defaults.TextColumnName,
        string modelPath = SetFitOptions.Defaults.ModelPath, int numberOfIterations = SetFitOptions.Defaults.NumberOfIterations,
        int numberOfEpochs = SetFitOptions.Defaults.NumberOfEpochs) =>
        catalog.SetFit(Fill(labelColumnName, textColumnName, modelPath, numberOfIterations, numberOfEpochs));

    /// <summary>Trains a SetFit classifier for a Boolean label, with every option.</summary>
    /// <param name="catalog">The binary trainers.</param>
    /// <param name="options">Columns, encoder, contrastive step and head.</param>
    /// <returns>The estimator.</returns>
    public static TextClassificationEstimator SetFit(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog, SetFitOptions options) =>
        Create(catalog.GetHostEnvironment(), TextClassificationTask.Binary, options);

    private static SetFitOptions Fill(string label, string text, string modelPath, int iterations, int epochs) => new()
    {
        LabelColumnName = label,
        TextColumnName = text,
        ModelPath = modelPath,
        NumberOfIterations = iterations,
        NumberOfEpochs = epochs,
    };

    private static TextClassificationEstimator Create(IHostEnvironment env, TextClassificationTask task, SetFitOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.SecondTextColumnName is not null)
        {
            throw new ArgumentException("SetFit classifies single texts: its encoder makes one embedding per text. Leave SecondTextColumnName null, or concatenate the two columns first.", nameof(options));
        }

        return new TextClassificationEstimator(env, task, options, new SetFitTrainer(options), SetFitClassificationModel.Format);
    }
}
