"""The ProPS paper's tasks: their settings, and plain-language descriptions for ProPS+.

ProPS+ tells the LLM what the parameters mean instead of "assume no prior knowledge". The
descriptions are facts of the environments (gymnasium 1.x's documentation of each environment:
what the observation and action components are, how the reward is made, when an episode ends),
not hints about the answer.

The settings come from the paper's code (github.com/yfzhoucs/props-llm, ``configs/*/*_props.yaml``,
``agent/policy/linear_policy.py``, ``agent/llm_num_optim_linear_policy.py`` and the prompt
``agent/policy/templates/num_optim.j2``); docs/results_props.md lists them with their sources.
"""

from __future__ import annotations

from dataclasses import dataclass


MOUNTAINCAR_TASK = (
    "f(a,b) is the mean episode reward of a linear controller on MountainCarContinuous: a car "
    "in a valley must reach the flag on top of the right hill. At every step the engine force "
    "is a*position + b*velocity (position between -1.2 and 0.6, starting near -0.5 at the "
    "bottom; velocity between -0.07 and 0.07). The engine is too weak to drive straight up, so "
    "the car must swing back and forth to build momentum. Reaching the flag gives +100 and "
    "every step costs 0.1*force^2, so a controller that never reaches the flag scores 0 or less."
)


@dataclass(frozen=True)
class PaperTask:
    """One task of the ProPS paper and the settings its code uses.

    Every task of the paper's code is a linear policy ``scores = state @ W + b`` with a bias,
    parameters in ``[-6, 6]`` written with one decimal in the prompt, 400 iterations of 20
    evaluation episodes each (after 20 random warm-up episodes), and episodes capped at 1,000
    steps on top of the environment's own time limit. On a ``Discrete(n)`` action space the
    action is the index of the largest score (``np.argmax``: the first one on ties).

    Attributes:
        env_id: The gymnasium id.
        name: The paper's name of the task.
        state_dim: Observation components.
        action_dim: Action components, or actions of a ``Discrete(n)`` space.
        discrete: Whether the action space is ``Discrete(n)``.
        description: What the LLM is told under ProPS+ (:data:`TASK_DESCRIPTIONS`).
        bias: The paper's policy has a bias per action.
        low: Lower bound of every parameter.
        high: Upper bound of every parameter.
        decimals: Decimals the paper's prompt asks for.
        max_steps: The paper's step cap per episode (``max_traj_length``).
        n_eval_episodes: Episodes averaged per iteration.
        n_trials: The paper's iterations.

    Example:
        >>> PAPER_TASKS["Hopper-v5"].n_params
        36
    """

    env_id: str
    name: str
    state_dim: int
    action_dim: int
    discrete: bool
    description: str
    bias: bool = True
    low: float = -6.0
    high: float = 6.0
    decimals: int = 1
    max_steps: int = 1000
    n_eval_episodes: int = 20
    n_trials: int = 400

    @property
    def n_params(self) -> int:
        """Parameters of the paper's policy: the weights and, with ``bias``, the bias."""
        return self.state_dim * self.action_dim + (self.action_dim if self.bias else 0)


def _policy_text(state_dim: int, action_dim: int, discrete: bool) -> str:
    """How the parameters make the action, in words that hold with or without a bias."""
    if action_dim == 1:
        layout = (
            f"The parameters are the {state_dim} weights of a linear controller, one per state "
            "component in the order above (and, with a bias, a last parameter added to it): "
        )
        return layout + "action = sum of state[i]*weight[i] (+ bias)."
    how = (
        f"the agent takes the action whose score is largest, score[k] = sum of state[i]*W[i][k] "
        f"(+ bias[k]) for k = 0..{action_dim - 1}."
        if discrete
        else f"action[k] = sum of state[i]*W[i][k] (+ bias[k]) for k = 0..{action_dim - 1}."
    )
    return (
        f"The parameters are a {state_dim}x{action_dim} weight matrix W read row by row (the "
        f"first {action_dim} weigh state component 0 for each action, the next {action_dim} "
        "component 1, and so on), then, with a bias, one bias per action: " + how
    )


def _describe(
    head: str, state: str, action: str, reward: str, dims: tuple[int, int], discrete: bool
) -> str:
    return " ".join((head, state, action, _policy_text(*dims, discrete), reward))


CARTPOLE_TASK = _describe(
    "f(params) is the mean episode reward of a linear policy on CartPole: a pole is attached "
    "by an unactuated joint to a cart moving along a frictionless track, and starts upright.",
    "The state has 4 components: cart position (-4.8 to 4.8), cart velocity, pole angle "
    "(radians, -0.418 to 0.418) and pole angular velocity; all start uniformly in "
    "[-0.05, 0.05].",
    "There are 2 actions: 0 pushes the cart to the left, 1 pushes it to the right.",
    "The reward is +1 for every step, including the last; the episode ends when the pole angle "
    "leaves +-0.2095 rad (12 degrees), when the cart position leaves +-2.4, or after 500 steps.",
    (4, 2),
    True,
)

MOUNTAINCAR_DISCRETE_TASK = _describe(
    "f(params) is the mean episode reward of a linear policy on MountainCar: a car placed at "
    "the bottom of a valley must reach the flag on top of the right hill (position 0.5).",
    "The state has 2 components: position along the x-axis (-1.2 to 0.6, starting uniformly "
    "in [-0.6, -0.4]) and velocity (-0.07 to 0.07, starting at 0). The hill has height "
    "sin(3*position) and gravity pulls the car down it.",
    "There are 3 actions: 0 accelerates to the left, 1 does not accelerate, 2 accelerates to "
    "the right.",
    "The reward is -1 for every step; the episode ends when the car reaches position 0.5 or "
    "after 200 steps, so the score is minus the number of steps taken (between -200 and 0).",
    (2, 3),
    True,
)

INVERTED_PENDULUM_TASK = _describe(
    "f(params) is the mean episode reward of a linear policy on InvertedPendulum (MuJoCo): a "
    "pole is hinged on a cart that moves along a rail, and starts upright.",
    "The state has 4 components: cart position along the rail, vertical angle of the pole "
    "(radians), cart velocity, and angular velocity of the pole; all start uniformly in "
    "[-0.01, 0.01].",
    "The action is one number, the force applied to the cart; the environment clips it to "
    "[-3, 3] (sign: direction).",
    "The reward is +1 for every step the pole is upright (|angle| < 0.2); the episode ends "
    "when it is not, or after 1000 steps, so the score is between 0 and 1000.",
    (4, 1),
    False,
)

INVERTED_DOUBLE_PENDULUM_TASK = _describe(
    "f(params) is the mean episode reward of a linear policy on InvertedDoublePendulum "
    "(MuJoCo): two poles, one on top of the other, are hinged on a cart that moves along a "
    "rail, and start upright.",
    "The state has 9 components: cart position, sine of the angle between the cart and the "
    "first pole, sine of the angle between the two poles, the cosines of those two angles, "
    "cart velocity, the angular velocities of the two angles, and the constraint force on the "
    "cart along x. The start is upright with small random noise.",
    "The action is one number, the force applied to the cart; the environment clips it to "
    "[-1, 1].",
    "Every step gives 10 while the tip (x, y) of the second pole is higher than y = 1, minus "
    "(0.01*x^2 + (y - 2)^2), minus a small penalty on the poles' angular velocities; the "
    "episode ends when the tip falls to y <= 1, or after 1000 steps.",
    (9, 1),
    False,
)

SWIMMER_TASK = _describe(
    "f(params) is the mean episode reward of a linear policy on Swimmer (MuJoCo): a chain of "
    "three links joined by two rotors, in a viscous fluid, on a plane.",
    "The state has 8 components: angle of the front tip, angles of the first and second "
    "rotors, velocity of the tip along x and along y, and the angular velocities of the front "
    "tip, the first rotor and the second rotor. It starts near zero with small random noise.",
    "The action has 2 components: the torques on the first and the second rotor; the "
    "environment clips each to [-1, 1].",
    "Every step gives the forward velocity along +x (distance moved per second) minus "
    "0.0001 times the sum of the squared actions; episodes last 1000 steps.",
    (8, 2),
    False,
)

HOPPER_TASK = _describe(
    "f(params) is the mean episode reward of a linear policy on Hopper (MuJoCo): a one-legged "
    "robot of four parts (torso, thigh, leg, foot) in a plane, which should hop forward "
    "along +x.",
    "The state has 11 components: height of the torso (starts at 1.25), angle of the torso, "
    "angles of the thigh, leg and foot joints, velocity of the torso along x and along z, the "
    "torso's angular velocity, and the angular velocities of the thigh, leg and foot hinges. "
    "It starts standing with small random noise.",
    "The action has 3 components: the torques on the thigh, leg and foot rotors; the "
    "environment clips each to [-1, 1].",
    "Every step gives 1 while the hopper is healthy, plus its forward velocity along +x, minus "
    "0.001 times the sum of the squared actions; the episode ends when it is not healthy "
    "(torso height below 0.7, torso angle outside +-0.2 rad, or another state component above "
    "100 in magnitude) or after 1000 steps.",
    (11, 3),
    False,
)

WALKER2D_TASK = _describe(
    "f(params) is the mean episode reward of a linear policy on Walker2d (MuJoCo): a two-legged "
    "robot in a plane (torso; a right and a left thigh, leg and foot), which should walk "
    "forward along +x.",
    "The state has 17 components: height of the torso (starts at 1.25), angle of the torso, "
    "angles of the right thigh, leg and foot joints, angles of the left thigh, leg and foot "
    "joints, velocity of the torso along x and along z, the torso's angular velocity, and the "
    "angular velocities of the six hinges in the same order. It starts standing with small "
    "random noise.",
    "The action has 6 components: the torques on the right thigh, leg and foot rotors, then "
    "on the left thigh, leg and foot rotors; the environment clips each to [-1, 1].",
    "Every step gives 1 while the walker is healthy, plus its forward velocity along +x, minus "
    "0.001 times the sum of the squared actions; the episode ends when it is not healthy "
    "(torso height outside 0.8 to 2.0 or torso angle outside +-1 rad) or after 1000 steps.",
    (17, 6),
    False,
)

REACHER_TASK = _describe(
    "f(params) is the mean episode reward of a linear policy on Reacher (MuJoCo): a two-jointed "
    "arm fixed at one end, in a plane, should move its fingertip to a random target.",
    "The state has 10 components: cosines of the angles of the first and second arm, sines of "
    "those angles, x and y of the target, angular velocities of the first and second arm, and "
    "x and y of the fingertip's position minus the target's. The target is drawn uniformly "
    "within distance 0.2 of the center.",
    "The action has 2 components: the torques at the first hinge (at the fixed end) and at "
    "the second hinge (between the links); the environment clips each to [-1, 1].",
    "Every step gives minus the distance from the fingertip to the target, minus the sum of "
    "the squared actions; episodes last 50 steps, so the score is 0 or less.",
    (10, 2),
    False,
)

#: The ProPS paper's tasks, by gymnasium id, in the order of its table.
PAPER_TASKS = {
    task.env_id: task
    for task in (
        PaperTask(
            env_id="MountainCarContinuous-v0",
            name="MountainCarContinuous",
            state_dim=2,
            action_dim=1,
            discrete=False,
            description=MOUNTAINCAR_TASK,
        ),
        PaperTask(
            env_id="InvertedPendulum-v5",
            name="InvertedPendulum",
            state_dim=4,
            action_dim=1,
            discrete=False,
            description=INVERTED_PENDULUM_TASK,
        ),
        PaperTask(
            env_id="InvertedDoublePendulum-v5",
            name="InvertedDoublePendulum",
            state_dim=9,
            action_dim=1,
            discrete=False,
            description=INVERTED_DOUBLE_PENDULUM_TASK,
        ),
        PaperTask(
            env_id="Swimmer-v5",
            name="Swimmer",
            state_dim=8,
            action_dim=2,
            discrete=False,
            description=SWIMMER_TASK,
        ),
        PaperTask(
            env_id="Hopper-v5",
            name="Hopper",
            state_dim=11,
            action_dim=3,
            discrete=False,
            description=HOPPER_TASK,
        ),
        PaperTask(
            env_id="Walker2d-v5",
            name="Walker",
            state_dim=17,
            action_dim=6,
            discrete=False,
            description=WALKER2D_TASK,
        ),
        PaperTask(
            env_id="Reacher-v5",
            name="Reacher",
            state_dim=10,
            action_dim=2,
            discrete=False,
            description=REACHER_TASK,
        ),
        PaperTask(
            env_id="MountainCar-v0",
            name="MountainCar (discrete)",
            state_dim=2,
            action_dim=3,
            discrete=True,
            description=MOUNTAINCAR_DISCRETE_TASK,
        ),
        PaperTask(
            env_id="CartPole-v1",
            name="CartPole",
            state_dim=4,
            action_dim=2,
            discrete=True,
            description=CARTPOLE_TASK,
        ),
    )
}

TASK_DESCRIPTIONS = {env_id: task.description for env_id, task in PAPER_TASKS.items()}
