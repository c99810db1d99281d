using System.CommandLine;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary><c>--precision fp32|bf16</c>: the number format a command scores in (training always runs in fp32).</summary>
internal static class PrecisionOption
{
    public const string Float32 = "fp32";

    public const string BFloat16 = "bf16";

    public static Option<string?> Create(string description)
    {
        var option = new Option<string?>("--precision") { Description = description };
        option.AcceptOnlyFromAmong(Float32, BFloat16);
        return option;
    }

    public static InferencePrecision? Parse(string? value) => value switch
    {
        null => null,
        Float32 => InferencePrecision.Float32,
        BFloat16 => InferencePrecision.BFloat16,
        _ => throw new CliException($"--precision must be {Float32} or {BFloat16} (got '{value}')."),
    };

    public static string Name(InferencePrecision precision) => precision == InferencePrecision.BFloat16 ? BFloat16 : Float32;

    public const string Auto = "auto";

    /// <summary><c>--precision auto|fp32|bf16</c>: the number format of training steps.</summary>
    public static Option<string?> CreateForTraining(string description)
    {
        var option = new Option<string?>("--precision") { Description = description };
        option.AcceptOnlyFromAmong(Auto, Float32, BFloat16);
        return option;
    }

    public static TrainingPrecision ParseTraining(string? value) => value switch
    {
        null or Float32 => TrainingPrecision.Float32,
        BFloat16 => TrainingPrecision.BFloat16,
        Auto => TrainingPrecision.Auto,
        _ => throw new CliException($"--precision must be {Auto}, {Float32} or {BFloat16} (got '{value}')."),
    };

    public static string Name(TrainingPrecision precision) => precision switch
    {
        TrainingPrecision.BFloat16 => BFloat16,
        TrainingPrecision.Auto => Auto,
        _ => Float32,
    };

    public const string TrainingDescription =
        "Number format of the training steps: fp32 (default), bf16 (mixed precision: bfloat16 matmuls, float32 master weights, optimizer state and loss; "
        + "the saved model is float32) or auto (bf16 only where this CPU multiplies bfloat16 at least 1.2x faster than fp32, measured once; see `info`).";
}
