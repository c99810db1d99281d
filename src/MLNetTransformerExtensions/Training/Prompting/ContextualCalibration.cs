namespace MLNetTransformerExtensions.Training;

/// <summary>
/// Contextual calibration (Zhao et al., 2021): the class probabilities a prompt gives a content-free input such as
/// "N/A" measure its bias toward some label words, and dividing every prediction by them removes that bias.
/// </summary>
internal static class ContextualCalibration
{
    /// <summary>The calibration: the class probabilities of the content-free input's label-word scores.</summary>
    public static double[] FromContentFreeScores(double[] scores) => [.. Softmax(scores).Select(p => (double)p)];

    /// <summary>
    /// Class probabilities from label-word scores: their softmax, divided by the calibration when there is one (done
    /// in log space, before normalising).
    /// </summary>
    public static float[] Probabilities(double[] scores, double[]? calibration)
    {
        if (calibration is not null)
        {
            scores = [.. scores.Select((s, k) => s - Math.Log(Math.Max(calibration[k], double.Epsilon)))];
        }

        return Softmax(scores);
    }

    private static float[] Softmax(double[] scores)
    {
        var max = scores.Max();
        var exp = scores.Select(s => Math.Exp(s - max)).ToArray();
        var sum = exp.Sum();
        return [.. exp.Select(e => (float)(e / sum))];
    }
}
